import Foundation
import Kiln
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

    @Test func stableDiffusion15HasThePublishedSizes() throws {
        let stages = try ArchitectureBenchmark.sd15(width: 512, height: 512, batch: 2)
        var parameters: [String: Int] = [:]
        var flops: [String: Double] = [:]
        for stage in stages {
            let graph = Graph()
            let binder = WeightBinder(graph: graph, source: SyntheticTensors(), dtype: .float16)
            let (outputs, _) = try stage.build(graph, WeightScope(binder))
            parameters[stage.name] = graph.nodes.reduce(0) { total, node in
                if case .constant = node.operation { total + node.shape.elementCount } else { total }
            }
            flops[stage.name] = graph.flops(of: outputs) / 1e9
            if stage.name == "unet" { #expect(outputs[0].shape == [2, 4, 64, 64]) }
            if stage.name == "vae" { #expect(outputs[0].shape == [1, 3, 512, 512]) }
        }
        // Published sizes: U-Net 859.5M parameters, VAE decoder (with post_quant_conv) 49.5M, CLIP-L text 123.1M.
        #expect(parameters["unet"] == 859_520_964)
        #expect(parameters["vae"] == 49_490_199)
        #expect(parameters["text"] == 123_060_480)
        // DESIGN.md's reference: U-Net 803 GFLOP per image at 512x512, VAE decoder 2514 GFLOP.
        #expect(abs(flops["unet"]! / 2 - 803) / 803 < 0.03, "U-Net \(flops["unet"]! / 2) GFLOP per image")
        #expect(abs(flops["vae"]! - 2514) / 2514 < 0.03, "VAE \(flops["vae"]!) GFLOP")
    }
}

extension SyntheticTensors {
    /// Runs `body` on self and returns self (keeps the determinism test on one line per source).
    func then(_ body: (SyntheticTensors) -> Void) -> SyntheticTensors {
        body(self)
        return self
    }
}
