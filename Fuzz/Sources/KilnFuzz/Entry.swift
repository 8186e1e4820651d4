import CLibFuzzer
import Foundation

/// The target this process fuzzes, chosen once from KILN_FUZZ_TARGET: libFuzzer calls the entry
/// below millions of times and the choice must cost nothing after the first.
let selectedTarget: FuzzTarget = {
    let name = ProcessInfo.processInfo.environment["KILN_FUZZ_TARGET"] ?? ""
    guard let target = FuzzTarget.all.first(where: { $0.name == name }) else {
        let names = FuzzTarget.all.map(\.name).joined(separator: ", ")
        FileHandle.standardError.write(Data("kiln-fuzz: set KILN_FUZZ_TARGET to one of: \(names) (got '\(name)')\n".utf8))
        exit(2)
    }
    return target
}()

/// Called by libFuzzer before any input: an unknown target ends the process here, before
/// libFuzzer would count the exit as a crash of the first input.
@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<CInt>?, _ argv: UnsafeMutableRawPointer?) -> CInt {
    _ = selectedTarget
    return 0
}

/// libFuzzer's entry: one input, which the selected target feeds to its parser. A thrown error is
/// a correct answer to a malformed input; only a crash, a sanitizer report, a hang or an
/// allocation past libFuzzer's limits is a finding.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let data = start.map { Data(bytes: $0, count: count) } ?? Data()
    selectedTarget.run(data)
    return 0
}

/// The program's entry where SwiftPM names it (debug builds link `main` to `<module>_main` so
/// that tests can import an executable); it hands over to libFuzzer's own driver, as libFuzzer's
/// `main` does in builds without that renaming.
@_cdecl("kiln_fuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return withUnsafeMutablePointer(to: &arguments) { argumentsPointer in
        LLVMFuzzerRunDriver(&count, argumentsPointer) { start, size in fuzzOneInput(start, size) }
    }
}
