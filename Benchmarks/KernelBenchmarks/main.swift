// Kernel benchmarks: effective GFLOP/s of Kiln's kernels at Stable Diffusion sizes on one device.
//
//   swift run -c release kiln-kernel-benchmarks [--device D] [--iterations N] [--filter TEXT] [--json]
//
// Each benchmark is warmed up once, then timed N times (default 5) with GPU timestamp queries
// around the op alone; the table reports the median and the minimum.
import Foundation
import Kiln
import KilnVerification

let arguments = Array(CommandLine.arguments.dropFirst())
func option(_ name: String) -> String? {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
    return arguments[index + 1]
}
let iterations = Int(option("--iterations") ?? "5") ?? 5
let filter = option("--filter")
let json = arguments.contains("--json")

let backend = try VulkanBackend(selector: option("--device"))
let info = backend.device.info
var results: [KernelBenchmarkResult] = []
if !json {
    print("Device: \(info.name) — \(info.driverName) \(info.driverInfo), Vulkan \(info.apiVersion)")
    print("| kernel | storage | median ms | min ms | GFLOP | GFLOP/s |")
    print("|---|---|---:|---:|---:|---:|")
}
for benchmark in KernelBenchmark.all where filter.map({ benchmark.name.contains($0) }) ?? true {
    if benchmark.dtype == .float16 && !backend.device.float16Storage { continue }
    let result = try benchmark.measure(on: backend, iterations: iterations)
    results.append(result)
    if !json {
        print(String(format: "| %@ | %@ | %.1f | %.1f | %.2f | %.1f |", result.name, result.dtype,
                     result.medianMilliseconds, result.minMilliseconds, result.gflop, result.gflopPerSecond))
        FileHandle.standardOutput.synchronizeFile()
    }
}
if json {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    print(String(decoding: try encoder.encode(results), as: UTF8.self))
}
