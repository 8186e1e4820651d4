import Foundation
import Kiln
import KilnVerification
import Testing

/// SD3 / SD3.5 MMDiT transformers written by Tests/Fixtures/generate_sd3_fixtures.py, against the
/// output diffusers' `SD3Transformer2DModel` recorded for the same inputs, on the CPU reference
/// (1e-4) and on Vulkan with f32 (1e-3) and f16 (1e-2) weights; both from the diffusers folder
/// and from the original-key single file. Errors are relative to the reference's largest magnitude.
@Suite(.serialized) struct SD3TransformerTests {
    static let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("sd3")
    static let variants = ["sd3", "sd35"]

    static func configuration(_ variant: String) throws -> SD3TransformerConfiguration {
        try SD3TransformerConfiguration.load(root.appendingPathComponent("\(variant)/transformer/config.json"))
    }

    static func diffusersWeights(_ variant: String) throws -> TensorSource {
        try SafeTensorsSource.component(folder: root.appendingPathComponent("\(variant)/transformer"), baseName: "diffusion_pytorch_model")
    }

    static func singleFile(_ variant: String) throws -> SafeTensorsSource {
        try SafeTensorsSource(files: [root.appendingPathComponent("\(variant)/single_file.safetensors")])
    }

    @Test(arguments: variants)
    func diffusersFolder(_ variant: String) throws {
        try Self.expectTransformer(try Self.configuration(variant), try Self.diffusersWeights(variant), variant, label: "folder ")
    }

    @Test(arguments: variants)
    func originalSingleFile(_ variant: String) throws {
        let source = try SD3OriginalKeyNames.transformer(try Self.singleFile(variant))
        try Self.expectTransformer(try Self.configuration(variant), source, variant, label: "single file ")
    }

    /// Every original key is read, and the presented keys are exactly diffusers' with the same values.
    @Test(arguments: variants)
    func originalKeysMatchDiffusers(_ variant: String) throws {
        let original = try Self.singleFile(variant)
        let presented = try SD3OriginalKeyNames.transformer(original)
        let reference = try Self.diffusersWeights(variant)
        #expect(presented.names == reference.names)
        for name in reference.names {
            let expected = try reference.load(name)
            let actual = try presented.load(name)
            #expect(actual.shape == expected.shape, "\(variant) \(name)")
            #expect(actual.scalars == expected.scalars, "\(variant) \(name): values differ")
        }
        let renamed = try #require((presented as? HalvesSwappedTensorSource)?.base as? RenamedTensorSource)
        #expect(renamed.unusedStoredNames.isEmpty, "\(variant): unread original keys \(renamed.unusedStoredNames)")
    }

    /// A single file carries no config.json: the SD3.5 layout (QK norm gives the head width) is
    /// recovered from its shapes.
    @Test func inferredConfiguration() throws {
        let source = try SD3OriginalKeyNames.transformer(try Self.singleFile("sd35"))
        var inferred = try SD3TransformerConfiguration.inferred(from: source)
        let expected = try Self.configuration("sd35")
        inferred.sampleSize = expected.sampleSize
        #expect(inferred == expected)
    }

    /// The host-computed sin-cos table against the buffer diffusers computed (before rounding).
    @Test(arguments: variants)
    func positionTableMatchesDiffusers(_ variant: String) throws {
        let records = try SafeTensorsFile(url: Self.root.appendingPathComponent("\(variant)/components.safetensors"))
        let expected = try records.tensor("transformer.pos_embed_exact")
        let computed = try SD3PositionTable.table(configuration: try Self.configuration(variant))
        #expect(computed.shape == expected.shape)
        let worst = zip(computed.scalars, expected.scalars).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst <= 1e-6, "\(variant): position table off by \(worst)")
    }

    /// A checkpoint without `pos_embed` runs on the computed table. The recorded output used the
    /// f16-rounded buffer, hence 1e-3 rather than 1e-4.
    @Test func checkpointWithoutPositionTable() throws {
        let stored = try Self.diffusersWeights("sd35")
        var mapping: OriginalKeyNames.Mapping = [:]
        for name in stored.names where name != "pos_embed.pos_embed" { mapping[name] = (name, .identity) }
        let withoutTable = RenamedTensorSource(base: stored, mapping: mapping, origin: "without pos_embed")
        let configuration = try Self.configuration("sd35")
        let source = try SD3PositionTable.supplied(to: withoutTable, configuration: configuration)
        #expect(source.shape(of: "pos_embed.pos_embed") == [1, 100, 16])
        let records = try SafeTensorsFile(url: Self.root.appendingPathComponent("sd35/components.safetensors"))
        let inputs = ["x": try records.tensor("transformer.hidden_states"), "context": try records.tensor("transformer.encoder_hidden_states"),
                      "pooled": try records.tensor("transformer.pooled_projections"), "t": try records.tensor("transformer.timestep")]
        let model = SD3Transformer2DModel(configuration: configuration)
        let outputs = try StableDiffusionComponentTests.run(source: source, backend: CPUBackend(), dtype: .float32, inputs: inputs) { weights, x in
            [try model(hiddenStates: x["x"]!, encoderHiddenStates: x["context"]!, pooledProjections: x["pooled"]!, timesteps: x["t"]!, weights: weights)]
        }
        let error = Verification.compare(outputs[0], try records.tensor("transformer.sample")).relative
        print("SD3 computed position table sd35 cpu: relative error \(error)")
        #expect(error <= 1e-3, "computed position table: relative error \(error)")
    }

    @Test func rejectsLatentOffThePatchGrid() throws {
        let graph = Graph()
        let binder = WeightBinder(graph: graph, source: try Self.diffusersWeights("sd3"), dtype: .float32)
        let model = SD3Transformer2DModel(configuration: try Self.configuration("sd3"))
        #expect(throws: GraphError.self) {
            _ = try model(hiddenStates: graph.input("x", [1, 16, 7, 12]), encoderHiddenStates: graph.input("c", [1, 7, 24]),
                          pooledProjections: graph.input("p", [1, 12]), timesteps: graph.input("t", [1]), weights: WeightScope(binder))
        }
        #expect(throws: GraphError.self) {
            _ = try model(hiddenStates: graph.input("x2", [1, 16, 8, 22]), encoderHiddenStates: graph.input("c2", [1, 7, 24]),
                          pooledProjections: graph.input("p2", [1, 12]), timesteps: graph.input("t2", [1]), weights: WeightScope(binder))
        }
    }

    /// One forward pass on every backend against `variant`'s record.
    static func expectTransformer(_ configuration: SD3TransformerConfiguration, _ source: TensorSource, _ variant: String, label: String) throws {
        let records = try SafeTensorsFile(url: root.appendingPathComponent("\(variant)/components.safetensors"))
        let inputs = ["x": try records.tensor("transformer.hidden_states"), "context": try records.tensor("transformer.encoder_hidden_states"),
                      "pooled": try records.tensor("transformer.pooled_projections"), "t": try records.tensor("transformer.timestep")]
        let expected = try records.tensor("transformer.sample")
        let model = SD3Transformer2DModel(configuration: configuration)
        for (backend, dtype, tolerance) in try StableDiffusionComponentTests.backends() {
            let outputs = try StableDiffusionComponentTests.run(source: source, backend: backend, dtype: dtype, inputs: inputs) { weights, x in
                [try model(hiddenStates: x["x"]!, encoderHiddenStates: x["context"]!, pooledProjections: x["pooled"]!,
                           timesteps: x["t"]!, weights: weights)]
            }
            let error = Verification.compare(outputs[0], expected)
            print("SD3 \(label)\(variant) \(backend.name) \(dtype.shortName): relative error \(error.relative)")
            StableDiffusionComponentTests.expectClose(outputs[0], expected, tolerance, "\(label)\(variant) \(backend.name) \(dtype.shortName)")
        }
        let messages = (try? StableDiffusionComponentTests.vulkan.get().device.instance.validationMessages.all) ?? []
        #expect(messages.isEmpty, "validation messages: \(messages)")
    }
}
