// Pipeline benchmarks: what a long-running process (a render worker, a server) pays per request
// when request sizes change: each request's wall time, its stages, and the weight bytes it
// uploaded to the device.
//
//   swift run -c release kiln-pipeline-benchmarks --model FOLDER [--sizes 256x256,320x256,256x256]
//       [--steps 1] [--backend vulkan|cpu] [--dtype f16|f32] [--device D] [--json]
//
// make_random_sd15.py beside this file writes an SD1.5-shaped folder with random weights.
import Foundation
import Kiln

let arguments = Array(CommandLine.arguments.dropFirst())
func option(_ name: String) -> String? {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
    return arguments[index + 1]
}
guard let model = option("--model") else {
    FileHandle.standardError.write(Data("kiln-pipeline-benchmarks: --model FOLDER is required\n".utf8))
    exit(2)
}
let sizes = (option("--sizes") ?? "256x256,320x256,256x256").split(separator: ",").compactMap { text -> (Int, Int)? in
    let parts = text.split(separator: "x").compactMap { Int($0) }
    return parts.count == 2 ? (parts[0], parts[1]) : nil
}
let steps = Int(option("--steps") ?? "1") ?? 1
let json = arguments.contains("--json")
let backend: Backend = option("--backend") == "cpu" ? CPUBackend() : try VulkanBackend(selector: option("--device"))
let dtype: DType = option("--dtype") == "f32" || backend is CPUBackend ? .float32 : .float16

struct RequestTiming: Encodable {
    let width: Int
    let height: Int
    let seconds: Double
    let stageSeconds: [String: Double]
    let uploadedBytes: Int
}

let openStart = Date()
let pipeline = try Pipelines.open(URL(fileURLWithPath: model), backend: backend, dtype: dtype)
let openSeconds = Date().timeIntervalSince(openStart)
var timings: [RequestTiming] = []
if !json {
    print("\(pipeline.family.displayName) on \(backend.name), \(dtype.shortName), \(steps) step(s); opened in \(String(format: "%.2f", openSeconds)) s")
    print("| request | size | seconds | text | denoise | decode | weight bytes uploaded |")
    print("|---:|---|---:|---:|---:|---:|---:|")
}
for (index, (width, height)) in sizes.enumerated() {
    var request = pipeline.defaults.request(.prompt("a lighthouse at dusk", negative: nil), seed: 1)
    request.width = width
    request.height = height
    request.steps = steps
    let uploadedBefore = backend.uploadedConstantBytes
    let start = Date()
    let result = try pipeline.generate(request)
    let timing = RequestTiming(
        width: width, height: height, seconds: Date().timeIntervalSince(start),
        stageSeconds: result.stageSeconds.reduce(into: [:]) { $0[$1.key.rawValue] = $1.value },
        uploadedBytes: backend.uploadedConstantBytes - uploadedBefore)
    timings.append(timing)
    if !json {
        let stage = { (name: String) in String(format: "%.2f", timing.stageSeconds[name] ?? 0) }
        print(String(format: "| %d | %dx%d | %.2f | %@ | %@ | %@ | %d |", index + 1, width, height, timing.seconds,
                     stage("text"), stage("denoise"), stage("decode"), timing.uploadedBytes))
        FileHandle.standardOutput.synchronizeFile()
    }
}
if json {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    print(String(decoding: try encoder.encode(timings), as: UTF8.self))
}
