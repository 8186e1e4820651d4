import ArgumentParser
import Foundation
import Kiln
import KilnVerification

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time a full-size architecture's stages with synthetic weights (no files needed), or a real checkpoint's.")

    @Option(help: "Architecture with synthetic weights: \(ArchitectureBenchmark.architectures.joined(separator: ", ")) (default sd15).")
    var arch: String?
    @Option(help: "Benchmark a real checkpoint instead: a diffusers folder or a single .safetensors file.")
    var model: String?
    @Option(help: "For a single-file --model: a diffusers folder of the same family whose configs describe it.")
    var config: String?
    @Option var width = 512
    @Option var height = 512
    @Option(help: "Images per U-Net call (2 = one classifier-free-guidance step).")
    var batch = 2
    @Option(help: "Comma-separated stages: text, unet, vae; taesd (TAESD's decoder) for Stable Diffusion architectures.")
    var stages = "text,unet,vae"
    @Option(help: "Timed iterations per stage.")
    var steps = 3
    @Option(help: "Untimed iterations before timing, counting the first run (part of the cold start, which always runs).")
    var warmup = 1
    @Option(help: "vulkan or cpu.")
    var backend = "vulkan"
    @OptionGroup var deviceOptions: DeviceOptions
    @Option(help: "Weight and activation storage on the device: f16 or f32 (the CPU backend computes in f32).")
    var dtype = "f16"
    @Option(help: "Activation memory per graph (MiB) above which the VAE decodes in tiles (default: the device's maxMemoryAllocationSize; a quarter of RAM on the CPU).")
    var activationBudgetMib: Int?
    @Flag(help: "Add a per-op table from GPU timestamps.")
    var profile = false
    @Flag(help: "Vulkan: run residual adds as passes of their own instead of inside the conv/matmul producing them (for comparison).")
    var plainAdds = false
    @Flag(help: "Vulkan: no Winograd F(2x2, 3x3) for large 3x3 convolutions, only the direct kernel (for comparison).")
    var directConvolutions = false
    @Flag(help: "Print one JSON object with a device object and a stages array.")
    var json = false

    struct Report: Encodable {
        let device: [String: String]
        let arch: String
        let width: Int
        let height: Int
        let batch: Int
        let dtype: String
        let stages: [BenchmarkStageResult]
    }

    func run() throws {
        if let arch, !ArchitectureBenchmark.architectures.contains(arch) {
            throw ValidationError("--arch \(arch) is not available; choose from \(ArchitectureBenchmark.architectures.joined(separator: ", "))")
        }
        if model != nil && arch != nil { throw ValidationError("give --arch (synthetic weights) or --model (a checkpoint), not both") }
        if config != nil && model == nil { throw ValidationError("--config describes a --model file; there is no --model") }
        guard let storage = DType.allCases.first(where: { $0.shortName == dtype }), storage != .int32 else {
            throw ValidationError("--dtype must be f16 or f32, got '\(dtype)'")
        }
        let selected = stages.split(separator: ",").map(String.init)
        let available: [BenchmarkStage]
        let label: String
        if let model {
            let checkpoint: StableDiffusionCheckpoint
            do {
                checkpoint = try StableDiffusionCheckpoint(url: URL(fileURLWithPath: model), configFolder: config.map(URL.init(fileURLWithPath:)))
            } catch {
                throw ValidationError("--model \(model): \(error)")
            }
            available = try ArchitectureBenchmark.stages(checkpoint, width: width, height: height, batch: batch)
            label = "\(model) (\(checkpoint.family.rawValue))"
        } else {
            label = arch ?? "sd15"
            available = try ArchitectureBenchmark.stages(label, width: width, height: height, batch: batch)
        }
        if let unknown = selected.first(where: { name in !available.contains { $0.name == name } }) {
            throw ValidationError("unknown stage '\(unknown)'; stages are \(available.map(\.name).joined(separator: ", "))")
        }
        let chosen: Backend
        var device: [String: String] = ["backend": backend]
        switch backend {
        case "vulkan":
            let vulkan = try VulkanBackend(selector: deviceOptions.device, fusesAddends: !plainAdds, usesWinograd: directConvolutions ? false : nil)
            chosen = vulkan
            device["name"] = vulkan.device.info.name
            device["driver"] = "\(vulkan.device.info.driverName) \(vulkan.device.info.driverInfo)"
            device["fused_addends"] = "\(!plainAdds)"
            device["winograd"] = "\(vulkan.usesWinograd)"
        case "cpu":
            chosen = CPUBackend()
            device["name"] = "cpu"
        default:
            throw ValidationError("--backend must be vulkan or cpu, got '\(backend)'")
        }
        let weights: DType = backend == "cpu" ? .float32 : storage
        var results: [BenchmarkStageResult] = []
        for stage in available where selected.contains(stage.name) {
            if !json { printError("\(stage.name): preparing \(label) at \(width)x\(height), batch \(batch), \(weights.shortName)...") }
            let result = try ArchitectureBenchmark.measure(stage, backend: chosen, dtype: weights, iterations: steps, warmup: warmup, profile: profile,
                                                          activationBudgetBytes: activationBudgetMib.map { $0 << 20 })
            results.append(result)
            if !json { printStage(result) }
        }
        if json {
            try printJSON(Report(device: device, arch: label, width: width, height: height, batch: batch, dtype: weights.shortName, stages: results))
        }
    }

    private func printStage(_ r: BenchmarkStageResult) {
        print(String(format: "%@: median %.1f ms, min %.1f ms (%d iterations, %.3f it/s), %.1f GFLOP, %.2f GFLOP/s, device memory %@, cold start %.1f s",
                     r.name, r.medianMilliseconds, r.minMilliseconds, r.iterations, r.iterationsPerSecond, r.gflop, r.gflopPerSecond,
                     formatBytes(UInt64(r.peakDeviceBytes)), r.coldStartSeconds))
        if let tiling = r.tiling { print("    tiled: \(tiling)") }
        for op in r.profile ?? [] {
            print(String(format: "    %@ %5d  %10.1f ms  %5.1f%%  %8.2f GFLOP/s", op.operation.padding(toLength: 22, withPad: " ", startingAt: 0), op.count, op.totalMilliseconds, op.share * 100, op.gflopPerSecond))
        }
    }
}
