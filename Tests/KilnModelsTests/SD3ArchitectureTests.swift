import Foundation
import Kiln
import Testing

/// The published SD3 medium, SD3.5 medium and SD3.5 large transformers at full size, built (not
/// run) over synthetic weights: every tensor the graph asks for, counted, must add up to diffusers'
/// state_dict for the same config (architectures.json, from generate_sd3_fixtures.py), the output
/// must be the input's shape, and the config must be recoverable from the weights' shapes alone.
@Suite struct SD3ArchitectureTests {
    struct Architecture: Decodable {
        let config: SD3TransformerConfiguration
        let stateDictValues: Int

        enum CodingKeys: String, CodingKey {
            case config
            case stateDictValues = "state_dict_values"
        }
    }

    static let architectures: [String: Architecture] = {
        let url = SD3TransformerTests.root.appendingPathComponent("architectures.json")
        guard let data = try? Data(contentsOf: url) else { return [:] }
        return (try? JSONDecoder().decode([String: Architecture].self, from: data)) ?? [:]
    }()

    @Test(arguments: ["sd3_medium", "sd35_medium", "sd35_large"])
    func fullSize(_ name: String) throws {
        let architecture = try #require(Self.architectures[name], "architectures.json has no \(name)")
        let configuration = architecture.config
        let graph = Graph()
        let weights = SyntheticTensors()
        let binder = WeightBinder(graph: graph, source: weights, dtype: .float16)
        // 1024 x 1024 pixels: a 128 x 128 latent; CLIP's 77 tokens + T5's 256.
        let output = try SD3Transformer2DModel(configuration: configuration)(
            hiddenStates: graph.input("x", [2, 16, 128, 128], dtype: .float16),
            encoderHiddenStates: graph.input("context", [2, 333, 4096], dtype: .float16),
            pooledProjections: graph.input("pooled", [2, 2048], dtype: .float16),
            timesteps: graph.input("t", [2]), weights: WeightScope(binder))
        #expect(output.shape == [2, 16, 128, 128])
        let values = weights.names.reduce(0) { $0 + (weights.shape(of: $1)?.elementCount ?? 0) }
        #expect(values == architecture.stateDictValues, "\(name): \(values) weight values, diffusers has \(architecture.stateDictValues)")
        var inferred = try SD3TransformerConfiguration.inferred(from: weights)
        inferred.sampleSize = configuration.sampleSize
        #expect(inferred == configuration, "\(name): inferred \(inferred)")
        print("SD3 architecture \(name): \(values) weight values, \(graph.flops(of: [output]) / 1e12) TFLOP per CFG step at 1024x1024")
    }
}
