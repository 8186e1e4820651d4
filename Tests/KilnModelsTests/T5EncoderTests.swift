import Foundation
import Kiln
import KilnVerification
import Testing

/// The T5 encoder against transformers' T5EncoderModel: tiny sharded folders and recorded
/// `last_hidden_state`s written by Tests/Fixtures/generate_t5_fixtures.py, on the CPU reference
/// and on Vulkan with float32 and float16 weights (errors relative to the reference's largest
/// magnitude), plus the bucket function, configuration parsing, weight errors and the
/// T5-XXL footprint.
@Suite(.serialized) struct T5EncoderTests {
    static let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("t5")
    static let vulkan: Result<VulkanBackend, Error> = Result { try VulkanBackend() }
    static let configurations = ["gated_gelu", "relu", "odd_heads", "large_activations"]

    static func records() throws -> SafeTensorsFile {
        try SafeTensorsFile(url: root.appendingPathComponent("records.safetensors"))
    }

    static func load(_ name: String) throws -> (T5EncoderModel, TensorSource) {
        let folder = root.appendingPathComponent(name)
        let configuration = try T5Configuration.load(folder.appendingPathComponent("config.json"))
        return (T5EncoderModel(configuration: configuration), try SafeTensorsSource.component(folder: folder, baseName: "model"))
    }

    /// Runs the encoder over `ids` on `backend` with weights stored as `dtype`; also returns the
    /// checkpoint keys the graph left unused.
    static func encode(_ model: T5EncoderModel, _ source: TensorSource, ids: HostTensor, backend: Backend, dtype: DType)
        throws -> (output: HostTensor, unused: [String]) {
        let graph = Graph()
        let binder = WeightBinder(graph: graph, source: source, dtype: dtype)
        let length = ids.shape[1]
        let output = try model(ids: graph.input("ids", ids.shape, dtype: .int32),
                               relativePositionBuckets: graph.input("buckets", [length, length], dtype: .int32),
                               weights: WeightScope(binder))
        let inputs = ["ids": ids, "buckets": model.relativePositionBuckets(length: length)]
        let outputs = try backend.run(graph, outputs: [output], inputs: inputs, constants: binder.constants())
        return (outputs[0], binder.unusedNames())
    }

    @Test func bucketsMatchTransformers() throws {
        let records = try Self.records()
        let positions = try records.tensor("buckets.relative_position").integers
        let tables = records.entries.keys.filter { $0.hasPrefix("buckets.") && $0 != "buckets.relative_position" }
        #expect(tables.count == 4)
        for name in tables.sorted() {
            let parts = name.dropFirst("buckets.".count).split(separator: "_").compactMap { Int($0) }
            let buckets = T5RelativePositionBuckets(bucketCount: parts[0], maxDistance: parts[1])
            let expected = try records.tensor(name).integers
            let computed = positions.map { buckets.bucket(relativePosition: Int($0)) }
            let wrong = zip(positions, zip(computed, expected)).filter { $1.0 != $1.1 }
            #expect(wrong.isEmpty, "\(name): (position, ours, transformers) \(wrong.prefix(8).map { ($0.0, $0.1.0, $0.1.1) })")
        }
        let table = T5RelativePositionBuckets(bucketCount: 32, maxDistance: 128).table(length: 3)
        #expect(table.integers == [0, 17, 18, 1, 0, 17, 2, 1, 0])
    }

    @Test(arguments: configurations)
    func encoderMatchesTransformers(_ name: String) throws {
        let (model, source) = try Self.load(name)
        let records = try Self.records()
        let gpu = try Self.vulkan.get()
        let backends: [(Backend, DType, Float)] = [(CPUBackend(), .float32, 1e-4), (gpu, .float32, 1e-3), (gpu, .float16, 1e-2)]
        for length in [7, 77] {
            let ids = try records.tensor("\(name).ids_\(length)")
            let expected = try records.tensor("\(name).last_hidden_state_\(length)")
            for (backend, dtype, tolerance) in backends {
                let (output, unused) = try Self.encode(model, source, ids: ids, backend: backend, dtype: dtype)
                let label = "t5 \(name) L=\(length) \(backend.name) \(dtype.shortName)"
                #expect(output.shape == expected.shape, "\(label): shape \(output.shape) vs \(expected.shape)")
                let error = Verification.compare(output, expected)
                print("\(label): max relative error \(error.relative), absolute \(error.absolute)")
                #expect(error.relative <= tolerance, "\(label): relative error \(error.relative) > \(tolerance)")
                #expect(unused.isEmpty, "\(label): unused checkpoint keys \(unused)")
            }
        }
        #expect(Self.TestDeviceMessages.all.isEmpty, "\(Self.TestDeviceMessages.all)")
    }

    @Test func configurationFollowsT5Config() throws {
        let gated = try T5Configuration.load(Self.root.appendingPathComponent("gated_gelu/config.json"))
        #expect(gated.modelWidth == 32 && gated.headWidth == 8 && gated.feedForwardWidth == 48 && gated.headCount == 4)
        #expect(gated.relativeAttentionBucketCount == 32 && gated.relativeAttentionMaxDistance == 20 && gated.layerCount == 2)
        #expect(gated.isGated && gated.activation == "gelu_new")
        let relu = try T5Configuration.load(Self.root.appendingPathComponent("relu/config.json"))
        #expect(!relu.isGated && relu.activation == "relu")
        // Without the saved dense_act_fn / is_gated_act the projection decides, as in T5Config.
        let bare = try JSONDecoder().decode(T5Configuration.self, from: Data(#"{"feed_forward_proj": "gated-silu", "d_model": 8}"#.utf8))
        #expect(bare.isGated && bare.activation == "silu" && bare.modelWidth == 8 && bare.headWidth == 64)
        #expect(T5Configuration(feedForwardProjection: "gated-gelu").activation == "gelu_new")
        for invalid in ["gated", "gated-fancy", "gelu-gated-relu", "fancy-gelu"] {
            #expect(throws: ConfigurationError.self, "\(invalid)") {
                try T5Configuration(feedForwardProjection: invalid).validate(file: "config.json")
            }
        }
        #expect(throws: ConfigurationError.self) { try T5Configuration(headCount: 0).validate(file: "config.json") }
    }

    @Test func missingAndMisshapedWeightsNameTheTensor() throws {
        let (model, source) = try Self.load("gated_gelu")
        var tensors: [String: HostTensor] = [:]
        for name in source.names { tensors[name] = try source.load(name) }
        let ids = HostTensor(shape: [1, 5], integers: [3, 1, 4, 1, 5])
        let missingKey = "encoder.block.1.layer.1.DenseReluDense.wi_1.weight"
        var missing = tensors
        missing[missingKey] = nil
        #expect(throws: WeightError.missing(origin: "t5 test", name: missingKey, expected: [48, 32])) {
            try Self.encode(model, InMemoryTensors(missing, origin: "t5 test"), ids: ids, backend: CPUBackend(), dtype: .float32)
        }
        let biasKey = "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"
        var misshaped = tensors
        misshaped[biasKey] = HostTensor.zeros([16, 4])
        #expect(throws: WeightError.wrongShape(origin: "t5 test", name: biasKey, expected: [32, 4], found: [16, 4])) {
            try Self.encode(model, InMemoryTensors(misshaped, origin: "t5 test"), ids: ids, backend: CPUBackend(), dtype: .float32)
        }
        // Checkpoints that kept only the tied copy of the token table still load.
        var tied = tensors
        tied["encoder.embed_tokens.weight"] = tied.removeValue(forKey: "shared.weight")
        let original = try Self.encode(model, InMemoryTensors(tensors), ids: ids, backend: CPUBackend(), dtype: .float32)
        let renamed = try Self.encode(model, InMemoryTensors(tied), ids: ids, backend: CPUBackend(), dtype: .float32)
        #expect(original.output == renamed.output)
        // Buckets for another length are refused with both shapes named.
        let graph = Graph()
        let binder = WeightBinder(graph: graph, source: source, dtype: .float32)
        #expect(throws: GraphError.self) {
            try model(ids: graph.input("ids", [1, 5], dtype: .int32), relativePositionBuckets: graph.input("buckets", [4, 4], dtype: .int32),
                      weights: WeightScope(binder))
        }
    }

    /// T5-XXL (SD3/FLUX's text encoder) builds from synthetic weights: published parameter
    /// count, float16 weight bytes and the planned activation peak at FLUX's 512 tokens.
    @Test func t5XXLFootprint() throws {
        for (batch, length) in [(1, 256), (1, 512), (2, 512)] {
            let footprint = try T5MemoryFootprint(configuration: .t5XXL, batch: batch, length: length, dtype: .float16)
            print("t5-xxl f16 B=\(batch) L=\(length): \(footprint.parameterCount) parameters, weights \(footprint.weightBytes) bytes, planned activations \(footprint.plannedActivationBytes) bytes")
            #expect(footprint.parameterCount == 4_762_310_656)
            #expect(footprint.weightBytes == 2 * 4_762_310_656)
            // The largest transient is one float32 copy of a `wo` (4096 x 10240 x 4 = 168 MB); the
            // scores never exist, so the arena stays far below one [B, 64, L, L] float32 score tensor per layer.
            #expect(footprint.plannedActivationBytes < 512 << 20, "planned \(footprint.plannedActivationBytes) bytes")
        }
    }
}

extension T5EncoderTests {
    /// Validation-layer messages of the shared device (empty unless KILN_VALIDATE=1 found problems).
    enum TestDeviceMessages {
        static var all: [String] { (try? T5EncoderTests.vulkan.get().device.instance.validationMessages.all) ?? [] }
    }
}
