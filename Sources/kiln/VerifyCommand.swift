import ArgumentParser
import Foundation
import Kiln
import KilnVerification

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Run every op's Vulkan kernel against the CPU reference on a device.",
        discussion: "Exit status 1 if any case fails or (with KILN_VALIDATE=1 or sync) the validation layer reports anything.")

    @OptionGroup var deviceOptions: DeviceOptions

    @Flag(help: "Print a JSON array with one object per case.")
    var json = false

    @Option(help: "Only run cases whose name contains this text.")
    var filter: String?

    @Option(help: "Matmul/conv/attention kernels: automatic, shared (GPU tiles), register (CPU-device kernels, tuned tiles) or compact (CPU-device kernels, compact tiles).")
    var kernels: String = "automatic"

    func run() throws {
        guard let variant = KernelVariant(rawValue: kernels) else {
            throw ValidationError("--kernels must be one of \(KernelVariant.allCases.map(\.rawValue).joined(separator: ", ")), got '\(kernels)'")
        }
        let backend = try VulkanBackend(selector: deviceOptions.device, kernelVariant: variant)
        let cases = OperationCases.all.filter { testCase in
            (filter.map { testCase.name.contains($0) } ?? true) && (testCase.dtype != .float16 || backend.device.float16Storage)
        }
        guard !cases.isEmpty else { throw ValidationError("no case matches '\(filter ?? "")'") }
        if !json { print("Device: \(backend.device.info.name) (\(backend.device.info.driverName) \(backend.device.info.driverInfo))") }

        var results: [VerificationResult] = []
        for pass in VerificationPass.passes(cases, device: backend.device, variant: variant) {
            if !json && !pass.label.isEmpty { print("-- \(pass.label): \(pass.cases.count) cases") }
            for testCase in pass.cases {
                let result = Verification.run(testCase, on: pass.backend).labelled(pass.label)
                results.append(result)
                if !json {
                    let status = result.passed ? "pass" : "FAIL"
                    let error = String(format: "%.2e", result.maxRelativeError)
                    print("\(status)  \(result.name.padding(toLength: 44, withPad: " ", startingAt: 0)) max error \(error) (tolerance \(String(format: "%.0e", result.tolerance)))  \(String(format: "%.2f", result.seconds)) s")
                    if let message = result.error { print("      \(message)") }
                }
            }
        }
        if json {
            try printJSON(results)
        } else {
            let failed = results.filter { !$0.passed }.count
            print("\(results.count - failed) passed, \(failed) failed")
        }
        let messages = ValidationReport.print(backend)
        if results.contains(where: { !$0.passed }) || messages > 0 { throw ExitCode.failure }
    }
}
