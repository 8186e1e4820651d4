import Foundation
import Kiln
import KilnVerification
import Testing

/// Full-size architectures are built (not run: that is `kiln bench`'s job) with synthetic
/// weights: shapes, weight counts and FLOPs must be those of the published models.
@Suite struct ArchitectureTests {
    @Test func syntheticWeightsAreDeterministicAndShaped() throws {
        let source = SyntheticTensors(seed: 3)
        #expect(source.shape(of: "block.conv.weight", expected: [8, 4, 3, 3]) == [8, 4, 3, 3])
        #expect(source.shape(of: "block.norm1.weight", expected: [8]) == [8])
        let first = try source.load("block.conv.weight"), second = try SyntheticTensors(seed: 3).then {
            _ = $0.shape(of: "block.conv.weight", expected: [8, 4, 3, 3])
        }.load("block.conv.weight")
        #expect(first == second)
        #expect(first.scalars.allSatisfy { abs($0) <= (3.0 / 36).squareRoot() })
        #expect(try source.load("block.norm1.weight").scalars == .init(repeating: 1, count: 8))
        #expect(throws: WeightError.self) { try source.load("never.asked") }
    }

    /// Parameters and GFLOP of each stage as `kiln bench` builds it.
    static func measure(_ arch: String, width: Int, height: Int) throws -> (parameters: [String: Int], gflop: [String: Double], outputs: [String: [Shape]]) {
        var parameters: [String: Int] = [:], gflop: [String: Double] = [:], shapes: [String: [Shape]] = [:]
        for stage in try ArchitectureBenchmark.stages(arch, width: width, height: height, batch: 2) {
            let graph = Graph()
            let binder = WeightBinder(graph: graph, source: SyntheticTensors(), dtype: .float16)
            let outputs = try stage.build(graph, WeightScope(binder)).outputs
            // Only the weights the outputs reach are uploaded.
            parameters[stage.name] = graph.dependencies(of: outputs).map { graph.nodes[$0] }.reduce(0) { total, node in
                if case .constant = node.operation { total + node.shape.elementCount } else { total }
            }
            gflop[stage.name] = graph.flops(of: outputs) / 1e9
            shapes[stage.name] = outputs.map(\.shape)
        }
        return (parameters, gflop, shapes)
    }

    @Test func stableDiffusion15HasThePublishedSizes() throws {
        let (parameters, gflop, shapes) = try Self.measure("sd15", width: 512, height: 512)
        // Published sizes: U-Net 859.5M parameters, VAE decoder (with post_quant_conv) 49.5M, CLIP-L text 123.1M.
        #expect(parameters["unet"] == 859_520_964)
        #expect(parameters["vae"] == 49_490_199)
        #expect(parameters["text"] == 123_060_480)
        #expect(shapes["unet"] == [[2, 4, 64, 64]])
        #expect(shapes["vae"] == [[1, 3, 512, 512]])
        // TAESD's decoder as released (4 -> 64 conv, 3 + 3 + 3 + 1 blocks of three 64-channel 3x3
        // convolutions, three bias-free 3x3 convolutions after the upsamplings, 64 -> 3 conv):
        // 2,368 + 10 x 110,784 + 3 x 36,864 + 1,731.
        #expect(parameters["taesd"] == 1_222_531)
        #expect(shapes["taesd"] == [[1, 3, 512, 512]])
        // DESIGN.md's reference: U-Net 803 GFLOP per image at 512x512, VAE decoder 2514 GFLOP.
        #expect(abs(gflop["unet"]! / 2 - 803) / 803 < 0.03, "U-Net \(gflop["unet"]! / 2) GFLOP per image")
        #expect(abs(gflop["vae"]! - 2514) / 2514 < 0.03, "VAE \(gflop["vae"]!) GFLOP")
    }

    /// Parameter counts of diffusers' and transformers' own modules built from the releases'
    /// configs (counted on torch's meta device).
    @Test func stableDiffusion21AndXLHaveThePublishedSizes() throws {
        let sd21 = try Self.measure("sd21", width: 768, height: 768)
        #expect(sd21.parameters["unet"] == 865_910_724)
        #expect(sd21.parameters["text"] == 340_387_840)
        #expect(sd21.parameters["vae"] == 49_490_199)
        #expect(sd21.outputs["text"] == [[2, 77, 1024], [2, 1024]])
        #expect(sd21.outputs["unet"] == [[2, 4, 96, 96]])

        let sdxl = try Self.measure("sdxl", width: 1024, height: 1024)
        #expect(sdxl.parameters["unet"] == 2_567_463_684)
        // CLIP-L less its last layer (7,087,872) and final norm (1,536), which the penultimate
        // states never reach, plus all of bigG with its projection.
        #expect(sdxl.parameters["text"] == 115_971_072 + 694_659_840)
        #expect(sdxl.outputs["text"] == [[2, 77, 768], [2, 77, 1280], [2, 1280]])
        #expect(sdxl.outputs["unet"] == [[2, 4, 128, 128]])
    }

    /// `kiln bench --model`: the stages of a real checkpoint bind its own weights (a missing or
    /// mis-shaped tensor would throw) and run.
    @Test(arguments: ["sd1", "sdxl"]) func checkpointStagesRunWithTheirOwnWeights(family: String) throws {
        let folder = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("sd/\(family)/diffusers")
        let checkpoint = try StableDiffusionCheckpoint(url: folder)
        let stages = try ArchitectureBenchmark.stages(checkpoint, width: 64, height: 48, batch: 2)
        // taesd: TAESD's decoder with synthetic weights (a checkpoint has none), for comparison with the VAE.
        #expect(stages.map(\.name) == ["text", "unet", "vae", "taesd"])
        for stage in stages {
            let result = try ArchitectureBenchmark.measure(stage, backend: CPUBackend(), dtype: .float32, iterations: 1, warmup: 0, profile: false)
            #expect(result.gflop > 0 && result.medianMilliseconds > 0, "\(stage.name)")
        }
        let graph = Graph()
        let binder = WeightBinder(graph: graph, source: stages[1].weights, dtype: .float32)
        _ = try stages[1].build(graph, WeightScope(binder))
        #expect(binder.unusedNames().isEmpty, "the U-Net stage leaves \(binder.unusedNames().prefix(3)) unused")
    }

    /// The transformer denoisers at the releases' sizes, checkpoint weights only (DiT's position
    /// table is computed on the host): diffusers' DiTTransformer2DModel (its 28 per-block copies of
    /// the embedder included), SD3 medium's state_dict and FLUX.1-schnell's parameters, and
    /// CLIP-L + CLIP-G + T5-XXL's encoder for SD3's text stage.
    @Test func transformerArchitecturesHaveThePublishedSizes() throws {
        func weights(_ arch: String) throws -> [String: Int] {
            var counts: [String: Int] = [:]
            for stage in try ArchitectureBenchmark.stages(arch, width: 256, height: 256, batch: 2) where stage.name != "vae" {
                let graph = Graph()
                let outputs = try stage.build(graph, WeightScope(WeightBinder(graph: graph, source: SyntheticTensors(), dtype: .float16))).outputs
                counts[stage.name] = graph.dependencies(of: outputs).map { graph.nodes[$0] }.reduce(0) { total, node in
                    if case .constant(let name) = node.operation, !name.hasPrefix("kiln.") { total + node.shape.elementCount } else { total }
                }
            }
            return counts
        }
        #expect(try weights("dit-xl-2")["unet"] == 749_826_464)
        let sd3 = try weights("sd3-medium")
        #expect(sd3["unet"] == 2_084_951_104)
        #expect(sd3["text"] == 123_650_304 + 694_659_840 + 4_762_310_656)
        #expect(try weights("flux-schnell")["unet"] == 11_891_178_560)
    }

    @Test func unknownArchitecturesAndSizesAreRefused() {
        #expect(throws: GraphError.self) { try ArchitectureBenchmark.stages("sd14", width: 512, height: 512, batch: 1) }
        #expect(throws: GraphError.self) { try ArchitectureBenchmark.stages("sdxl", width: 1001, height: 1024, batch: 1) }
    }
}

extension SyntheticTensors {
    /// Runs `body` on self and returns self (keeps the determinism test on one line per source).
    func then(_ body: (SyntheticTensors) -> Void) -> SyntheticTensors {
        body(self)
        return self
    }
}
