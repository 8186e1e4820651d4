import Foundation
import Kiln
import KilnVerification
import Testing

/// DiTTransformer2DModel, from the diffusers folder and from the original facebookresearch
/// names, against diffusers' output recorded by Tests/Fixtures/generate_dit_fixtures.py
/// (`dit/transformer.safetensors`): CPU 1e-4, Vulkan f32 1e-3, f16 1e-2 of the largest magnitude.
@Suite(.serialized) struct DiTTransformerTests {
    static let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("dit")
    static var folder: URL { root.appendingPathComponent("diffusers") }
    static var original: URL { root.appendingPathComponent("original.safetensors") }
    static let vulkan: Result<VulkanBackend, Error> = Result { try VulkanBackend() }

    static func records() throws -> SafeTensorsFile {
        try SafeTensorsFile(url: root.appendingPathComponent("transformer.safetensors"))
    }

    /// Runs the transformer over `checkpoint`'s weights on `backend` with the recorded inputs.
    static func run(_ transformer: ModelComponent<DiTConfiguration>, model: DiTTransformer2DModel,
                    records: SafeTensorsFile, backend: Backend, dtype: DType) throws -> HostTensor {
        let sample = try records.tensor("inputs.sample"), timesteps = try records.tensor("inputs.timesteps")
        let labels = try records.tensor("inputs.class_labels")
        let graph = Graph()
        let binder = WeightBinder(graph: graph, source: transformer.weights, dtype: dtype)
        let output = try model(
            sample: graph.input("sample", sample.shape, dtype: dtype), timesteps: graph.input("timesteps", timesteps.shape),
            classLabels: graph.input("labels", labels.shape, dtype: .int32), weights: WeightScope(binder))
        #expect(binder.unusedNames().isEmpty, "unused weights: \(binder.unusedNames())")
        var storedSample = sample
        storedSample.dtype = dtype
        let constants = binder.constants().adding(output.hostConstants)
        return try backend.run(graph, outputs: [output.sample], inputs: [
            "sample": storedSample.roundedToStorage(), "timesteps": timesteps, "labels": labels,
        ], constants: constants)[0]
    }

    static func expectParity(_ checkpoint: DiTCheckpoint, label: String) throws {
        try expectParity(checkpoint.transformer, model: checkpoint.model, records: records(), label: label)
    }

    static func expectParity(_ transformer: ModelComponent<DiTConfiguration>, model: DiTTransformer2DModel,
                             records: SafeTensorsFile, label: String) throws {
        let expected = try records.tensor("outputs.sample")
        let gpu = try vulkan.get()
        for (backend, dtype, tolerance) in [(CPUBackend() as Backend, DType.float32, Float(1e-4)), (gpu, .float32, 1e-3), (gpu, .float16, 1e-2)] {
            let actual = try run(transformer, model: model, records: records, backend: backend, dtype: dtype)
            #expect(actual.shape == expected.shape, "\(label): shape \(actual.shape) vs \(expected.shape)")
            let error = Verification.compare(actual, expected).relative
            print("dit transformer \(label) \(backend.name) \(dtype.shortName): relative error \(error)")
            #expect(error <= tolerance, "\(label) \(backend.name) \(dtype.shortName): relative error \(error) > \(tolerance)")
        }
        // With KILN_VALIDATE=1 the validation layer watched every Vulkan run: nothing may be reported.
        #expect(gpu.device.instance.validationMessages.all.isEmpty, "validation: \(gpu.device.instance.validationMessages.all.prefix(3))")
    }

    @Test func diffusersLayout() throws {
        let checkpoint = try DiTCheckpoint(url: Self.folder)
        #expect(!checkpoint.usesOriginalNames)
        #expect(checkpoint.transformer.configuration.learnsSigma)
        try checkpoint.validate()
        try Self.expectParity(checkpoint, label: "diffusers")
    }

    @Test func originalLayout() throws {
        let checkpoint = try DiTCheckpoint(url: Self.original, configFolder: Self.folder)
        #expect(checkpoint.usesOriginalNames)
        try checkpoint.validate()
        try Self.expectParity(checkpoint, label: "original")
    }

    /// No learned sigma, exact GELU, an affine LayerNorm, 10 classes, run at 12x12 against its
    /// sample_size 8 (the position table stretched to the trained grid, as diffusers does).
    @Test func variantAtALargerSize() throws {
        let folder = Self.root.appendingPathComponent("variant")
        let configuration = try DiTConfiguration.load(folder.appendingPathComponent("config.json"))
        #expect(!configuration.learnsSigma && configuration.normElementwiseAffine && configuration.activation == "gelu")
        let transformer = ModelComponent(
            configuration: configuration, weights: try SafeTensorsSource.component(folder: folder, baseName: "diffusion_pytorch_model") as TensorSource)
        let records = try SafeTensorsFile(url: folder.appendingPathComponent("records.safetensors"))
        try Self.expectParity(transformer, model: DiTTransformer2DModel(configuration: configuration), records: records, label: "variant")
    }

    /// The split of the fused qkv gives diffusers' to_q/to_k/to_v exactly; the one embedder is
    /// block 0's (diffusers' other blocks hold copies of it).
    @Test func originalQKVSplitMatchesDiffusers() throws {
        let checkpoint = try DiTCheckpoint(url: Self.original, configFolder: Self.folder)
        #expect(checkpoint.model.sharesEmbedder)
        let original = checkpoint.transformer.weights
        let diffusers = try DiTCheckpoint(url: Self.folder).transformer.weights
        let copies = Set(diffusers.names.filter { $0.contains(".norm1.emb.") && !$0.hasPrefix("transformer_blocks.0.") })
        #expect(!copies.isEmpty)
        #expect(Set(original.names) == Set(diffusers.names).subtracting(copies))
        for name in original.names {
            let a = try original.load(name), b = try diffusers.load(name)
            #expect(a.shape == b.shape && a.scalars == b.scalars, "\(name) differs between the layouts")
        }
    }

    /// The host sin-cos table equals diffusers' (stored, in f16, in the original file as pos_embed).
    @Test func positionTableMatchesOriginalFile() throws {
        let stored = try SafeTensorsFile(url: Self.original).tensor("pos_embed")
        let table = SinCosPositionEmbedding.table(width: 32, rows: 4, columns: 4, baseSize: 4)
        #expect(stored.shape.dimensions == [1, 16, 32])
        let error = zip(table.scalars, stored.scalars).map { abs($0 - $1) }.max() ?? .infinity
        #expect(error <= 1e-3, "position table differs from the stored one by \(error)")
    }

    @Test func configurationErrorsNameTheProblem() throws {
        let json = #"{"num_attention_heads": 2, "attention_head_dim": 16, "norm_type": "ada_norm", "num_embeds_ada_norm": 10}"#
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-dit-config-\(UUID().uuidString).json")
        try Data(json.utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        #expect { try DiTConfiguration.load(file) } throws: { error in
            "\(error)".contains("norm_type 'ada_norm'") && "\(error)".contains(file.lastPathComponent)
        }
        #expect { try DiTCheckpoint(url: Self.original) } throws: { "\($0)".contains("--config") }
    }
}
