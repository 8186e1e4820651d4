import Foundation
import Kiln
import KilnVerification
import Testing

/// FLUX.1 transformers (schnell-style and dev-style with guidance embedding), loaded from the
/// diffusers folders and from the original-key single files that
/// Tests/Fixtures/generate_flux_fixtures.py wrote, against the output diffusers'
/// FluxTransformer2DModel recorded for the same inputs, on the CPU reference and on Vulkan with
/// f32 and f16 weights. Errors are relative to the reference's largest magnitude.
@Suite(.serialized) struct FluxTransformerTests {
    static let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("flux")
    static let vulkan: Result<VulkanBackend, Error> = Result { try VulkanBackend() }

    /// (backend, weight storage, tolerance): CPU 1e-4, Vulkan f32 1e-3, f16 1e-2.
    static func backends() throws -> [(Backend, DType, Float)] {
        let gpu = try vulkan.get()
        return [(CPUBackend(), .float32, 1e-4), (gpu, .float32, 1e-3), (gpu, .float16, 1e-2)]
    }

    static func records(_ variant: String) throws -> SafeTensorsFile {
        try SafeTensorsFile(url: root.appendingPathComponent("\(variant)/records.safetensors"))
    }

    static func configuration(_ variant: String) throws -> FluxTransformerConfiguration {
        try FluxTransformerConfiguration.load(root.appendingPathComponent("\(variant)/transformer/config.json"))
    }

    static func source(_ variant: String, singleFile: Bool) throws -> TensorSource {
        if singleFile {
            return try FluxOriginalKeyNames.transformer(SafeTensorsSource(files: [root.appendingPathComponent("\(variant)/single_file.safetensors")]))
        }
        return try SafeTensorsSource.component(folder: root.appendingPathComponent("\(variant)/transformer"), baseName: "diffusion_pytorch_model")
    }

    /// Runs the transformer over `source` on `backend`; returns the output and the checkpoint keys nothing read.
    static func run(_ model: FluxTransformer2DModel, source: TensorSource, records: SafeTensorsFile, backend: Backend,
                    dtype: DType, guidance: Bool) throws -> (output: HostTensor, unused: [String]) {
        let graph = Graph()
        let binder = WeightBinder(graph: graph, source: source, dtype: dtype)
        let (cos, sin) = try model.rotaryEmbedding.tables(textIDs: records.tensor("inputs.txt_ids"), imageIDs: records.tensor("inputs.img_ids"))
        var values: [String: HostTensor] = ["cos": cos, "sin": sin]
        var inputs: [String: Tensor] = [:]
        // Activations in the weights' type; timesteps, guidance and the rotary tables stay f32
        // (the model casts them) as a pipeline feeds them.
        for name in ["hidden_states", "encoder_hidden_states", "pooled_projections"] {
            var value = try records.tensor("inputs.\(name)")
            value.dtype = dtype
            values[name] = value.roundedToStorage()
            inputs[name] = graph.input(name, value.shape, dtype: dtype)
        }
        for name in ["timestep"] + (guidance ? ["guidance"] : []) {
            values[name] = try records.tensor("inputs.\(name)")
            inputs[name] = graph.input(name, values[name]!.shape)
        }
        let output = try model(
            hiddenStates: inputs["hidden_states"]!, encoderHiddenStates: inputs["encoder_hidden_states"]!,
            pooledProjections: inputs["pooled_projections"]!, timesteps: inputs["timestep"]!, guidance: inputs["guidance"],
            rotaryCos: graph.input("cos", cos.shape), rotarySin: graph.input("sin", sin.shape), weights: WeightScope(binder))
        let result = try backend.run(graph, outputs: [output], inputs: values, constants: binder.constants())
        return (result[0], binder.unusedNames())
    }

    @Test(arguments: ["schnell", "dev"])
    func rotaryTablesMatchFluxPosEmbed(_ variant: String) throws {
        let records = try Self.records(variant)
        let model = FluxTransformer2DModel(configuration: try Self.configuration(variant))
        let (cos, sin) = try model.rotaryEmbedding.tables(textIDs: records.tensor("inputs.txt_ids"), imageIDs: records.tensor("inputs.img_ids"))
        for (table, name) in [(cos, "rope.cos"), (sin, "rope.sin")] {
            let expected = try records.tensor(name)
            #expect(table.shape == expected.shape)
            #expect(Verification.compare(table, expected).absolute <= 1e-6, "\(variant) \(name)")
        }
    }

    @Test(arguments: [("schnell", false), ("schnell", true), ("dev", false), ("dev", true)])
    func transformerMatchesDiffusers(_ variant: String, _ singleFile: Bool) throws {
        let configuration = try Self.configuration(variant)
        let model = FluxTransformer2DModel(configuration: configuration)
        let source = try Self.source(variant, singleFile: singleFile)
        let records = try Self.records(variant)
        let expected = try records.tensor("output")
        for (backend, dtype, tolerance) in try Self.backends() {
            let (output, unused) = try Self.run(model, source: source, records: records, backend: backend, dtype: dtype,
                                                guidance: configuration.guidanceEmbeds)
            let label = "\(variant) \(singleFile ? "single file" : "diffusers") \(backend.name) \(dtype.shortName)"
            #expect(output.shape == expected.shape, "\(label): shape \(output.shape)")
            let error = Verification.compare(output, expected)
            print("flux \(label): relative error \(error.relative)")
            #expect(error.relative <= tolerance, "\(label): relative error \(error.relative) > \(tolerance)")
            #expect(unused.isEmpty, "\(label): checkpoint tensors not used: \(unused)")
        }
        // With KILN_VALIDATE=1 the Khronos layer's messages are collected; none are allowed.
        #expect(try Self.vulkan.get().device.instance.validationMessages.all.isEmpty)
    }

    @Test func singleFileMappingReadsEveryStoredTensor() throws {
        for variant in ["schnell", "dev"] {
            let file = try SafeTensorsSource(files: [Self.root.appendingPathComponent("\(variant)/single_file.safetensors")])
            let presented = try FluxOriginalKeyNames.transformer(file)
            let folder = try Self.source(variant, singleFile: false)
            #expect(presented.names == folder.names, "\(variant): presented keys differ from the diffusers folder's")
            let stored = Set(presented.names.compactMap { name -> String? in
                ((presented as? HalvesSwappedTensorSource)?.base as? RenamedTensorSource)?.mapping[name]?.stored
            })
            #expect(stored == Set(file.names), "\(variant): stored keys left unread: \(Set(file.names).subtracting(stored).sorted())")
            for name in folder.names {
                #expect(try presented.load(name).scalars == folder.load(name).scalars, "\(variant): \(name) differs between layouts")
            }
        }
    }

    @Test func configurationIsInferredFromSingleFiles() throws {
        for variant in ["schnell", "dev"] {
            let configuration = try Self.configuration(variant)
            let file = try SafeTensorsSource(files: [Self.root.appendingPathComponent("\(variant)/single_file.safetensors")])
            #expect(FluxOriginalKeyNames.isOriginal(file))
            let inferred = try FluxOriginalKeyNames.inferConfiguration(file, axesDimensionsRope: configuration.axesDimensionsRope)
            #expect(inferred == configuration, "\(variant)")
        }
    }

    @Test func devRequiresGuidanceAndSchnellRejectsIt() throws {
        for (variant, giveGuidance) in [("dev", false), ("schnell", true)] {
            let configuration = try Self.configuration(variant)
            let model = FluxTransformer2DModel(configuration: configuration)
            let graph = Graph()
            let binder = WeightBinder(graph: graph, source: try Self.source(variant, singleFile: false), dtype: .float32)
            let (batch, text, image) = (2, 6, 15)
            let length = text + image
            #expect(throws: GraphError.self) {
                _ = try model(
                    hiddenStates: graph.input("x", [batch, image, configuration.inChannels]),
                    encoderHiddenStates: graph.input("t", [batch, text, configuration.jointAttentionDimension]),
                    pooledProjections: graph.input("p", [batch, configuration.pooledProjectionDimension]),
                    timesteps: graph.input("s", [batch]), guidance: giveGuidance ? graph.input("g", [batch]) : nil,
                    rotaryCos: graph.input("c", [length, configuration.headDimension]),
                    rotarySin: graph.input("n", [length, configuration.headDimension]), weights: WeightScope(binder))
            }
        }
    }

    /// FLUX.1 at full size (defaults = the releases' config) with synthetic weights, built, not
    /// run: parameter counts of diffusers' own FluxTransformer2DModel (counted on torch's meta
    /// device): 11,891,178,560 schnell, 11,901,408,320 dev.
    @Test(arguments: [(false, 11_891_178_560), (true, 11_901_408_320)])
    func fullSizeTransformerHasThePublishedParameterCount(_ guidance: Bool, _ expected: Int) throws {
        let configuration = FluxTransformerConfiguration(guidanceEmbeds: guidance)
        let model = FluxTransformer2DModel(configuration: configuration)
        let graph = Graph()
        let binder = WeightBinder(graph: graph, source: SyntheticTensors(), dtype: .float16)
        let (text, image) = (512, 64 * 64)   // 1024x1024 pixels: 128x128 latents in 2x2 patches
        let output = try model(
            hiddenStates: graph.input("x", [1, image, 64], dtype: .float16), encoderHiddenStates: graph.input("t", [1, text, 4096], dtype: .float16),
            pooledProjections: graph.input("p", [1, 768], dtype: .float16), timesteps: graph.input("s", [1]),
            guidance: guidance ? graph.input("g", [1]) : nil, rotaryCos: graph.input("c", [text + image, 128]),
            rotarySin: graph.input("n", [text + image, 128]), weights: WeightScope(binder))
        #expect(output.shape == [1, image, 64])
        let parameters = graph.dependencies(of: [output]).map { graph.nodes[$0] }.reduce(0) { total, node in
            if case .constant = node.operation { total + node.shape.elementCount } else { total }
        }
        #expect(parameters == expected)
        // One step's FLOPs: every block applies 24 D^2 per token in its linears (q, k, v, out:
        // 4 D^2; MLP: 8 D^2; times 2 for multiply-add; the single blocks' fused projections come
        // to the same 12 D^2) and 4 L^2 D in attention; the embedders and modulations are small.
        let (width, length) = (3072.0, Double(text + image)), blocks = 19.0 + 38.0
        let analytic = blocks * 24 * width * width * length + blocks * 4 * length * length * width
        let flops = graph.flops(of: [output])
        #expect(abs(flops - analytic) / analytic < 1e-3, "\(flops / 1e12) TFLOP vs \(analytic / 1e12)")
        let order = graph.dependencies(of: [output])
        let plan = MemoryPlan(graph: graph, order: order, outputs: [output.id]) { node in
            if case .constant = node.operation { false } else { true }
        }
        print("flux \(guidance ? "dev" : "schnell") 1024x1024: \(flops / 1e12) TFLOP per step, activation arena \(Double(plan.arenaBytes) / Double(1 << 30)) GiB (f16)")
    }

    @Test func configurationRejectsRotaryAxesThatMissTheHeadWidth() throws {
        #expect(throws: ConfigurationError.self) {
            _ = try FluxTransformerConfiguration(json: ["attention_head_dim": 128, "axes_dims_rope": [16, 56, 48]], file: "config.json")
        }
    }
}
