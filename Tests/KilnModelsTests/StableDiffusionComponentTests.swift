import Foundation
import Kiln
import KilnVerification
import Testing

/// Each Stable Diffusion component, loaded from the diffusers folders that
/// Tests/Fixtures/generate_sd_fixtures.py wrote, against the outputs diffusers/transformers
/// recorded for the same inputs (`components.safetensors`), on the CPU reference and on Vulkan
/// with f32 and f16 weights. Errors are relative to the reference's largest magnitude.
@Suite(.serialized) struct StableDiffusionComponentTests {
    static let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("sd")
    static let vulkan: Result<VulkanBackend, Error> = Result { try VulkanBackend() }

    /// (backend, weight storage, tolerance) per the SD-models issue: CPU 1e-4, Vulkan f32 1e-3, f16 1e-2.
    static func backends() throws -> [(Backend, DType, Float)] {
        let gpu = try vulkan.get()
        return [(CPUBackend(), .float32, 1e-4), (gpu, .float32, 1e-3), (gpu, .float16, 1e-2)]
    }

    struct Records {
        let file: SafeTensorsFile
        func callAsFunction(_ name: String) throws -> HostTensor { try file.tensor(name) }
    }

    static func records(_ family: String) throws -> Records {
        Records(file: try SafeTensorsFile(url: root.appendingPathComponent("\(family)/components.safetensors")))
    }

    static func folder(_ family: String, _ component: String) -> URL {
        root.appendingPathComponent("\(family)/diffusers/\(component)")
    }

    /// Builds a graph over `source`'s weights and runs it; inputs are f32 values stored as `dtype`.
    static func run(
        source: TensorSource, backend: Backend, dtype: DType, inputs: [String: HostTensor],
        build: (WeightScope, [String: Tensor]) throws -> [Tensor]
    ) throws -> [HostTensor] {
        let graph = Graph()
        let binder = WeightBinder(graph: graph, source: source, dtype: dtype)
        var tensors: [String: Tensor] = [:]
        var values: [String: HostTensor] = [:]
        for (name, value) in inputs {
            let storage: DType = value.dtype == .int32 ? .int32 : dtype
            tensors[name] = graph.input(name, value.shape, dtype: storage)
            var stored = value
            stored.dtype = storage
            values[name] = storage == .int32 ? stored : stored.roundedToStorage()
        }
        let outputs = try build(WeightScope(binder), tensors)
        return try backend.run(graph, outputs: outputs, inputs: values, constants: binder.constants())
    }

    static func expectClose(_ actual: HostTensor, _ expected: HostTensor, _ tolerance: Float, _ label: String) {
        #expect(actual.shape == expected.shape, "\(label): shape \(actual.shape) vs \(expected.shape)")
        let error = Verification.compare(actual, expected)
        #expect(error.relative <= tolerance, "\(label): relative error \(error.relative) > \(tolerance)")
    }

    // MARK: Text encoders

    @Test(arguments: [("sd1", "text_encoder", "tokenizer"), ("sd2", "text_encoder", "tokenizer"),
                      ("sdxl", "text_encoder", "tokenizer"), ("sdxl", "text_encoder_2", "tokenizer_2")])
    func textEncoder(_ family: String, _ component: String, _ tokenizer: String) throws {
        let folder = Self.folder(family, component)
        let configuration = try CLIPTextConfiguration.load(folder.appendingPathComponent("config.json"))
        let source = try SafeTensorsSource.component(folder: folder, baseName: "model")
        let model = CLIPTextModel(configuration: configuration, prefix: CLIPTextModel.detectPrefix(in: source))
        try Self.expectTextEncoder(model, source, family, component, tokenizer)
    }

    /// Runs `model` over `source` on every backend against `family`'s records for `component`.
    static func expectTextEncoder(_ model: CLIPTextModel, _ source: TensorSource, _ family: String, _ component: String,
                                  _ tokenizer: String, label: String = "") throws {
        let records = try Self.records(family)
        let ids = try records("\(tokenizer).input_ids")
        let rows = CLIPTextModel.pooledRows(ids: ids.integers, sequenceLength: ids.shape[1])
        let inputs = ["ids": ids, "rows": HostTensor(shape: [rows.count], integers: rows)]
        for (backend, dtype, tolerance) in try Self.backends() {
            let outputs = try Self.run(source: source, backend: backend, dtype: dtype, inputs: inputs) { weights, x in
                let result = try model(ids: x["ids"]!, pooledRows: x["rows"]!, weights: weights)
                return [result.lastHiddenState, result.hiddenState(skippingLast: 1), result.pooled] + (result.textEmbeddings.map { [$0] } ?? [])
            }
            let label = "\(label)\(family) \(component) \(backend.name) \(dtype.shortName)"
            Self.expectClose(outputs[0], try records("\(component).last_hidden_state"), tolerance, label + " last")
            Self.expectClose(outputs[1], try records("\(component).penultimate_hidden_state"), tolerance, label + " penultimate")
            Self.expectClose(outputs[2], try records("\(component).pooler_output"), tolerance, label + " pooled")
            if outputs.count > 3 {
                Self.expectClose(outputs[3], try records("\(component).text_embeds"), tolerance, label + " text_embeds")
            }
        }
    }

    // MARK: VAE

    @Test(arguments: ["sd1", "sd2", "sdxl"])
    func vae(_ family: String) throws {
        let folder = Self.folder(family, "vae")
        let model = AutoencoderKL(configuration: try AutoencoderKLConfiguration.load(folder.appendingPathComponent("config.json")))
        try Self.expectVAE(model, try SafeTensorsSource.component(folder: folder, baseName: "diffusion_pytorch_model"), family)
    }

    /// Encodes, samples and decodes on every backend against `family`'s VAE records.
    static func expectVAE(_ model: AutoencoderKL, _ source: TensorSource, _ family: String, label: String = "") throws {
        let records = try Self.records(family)
        let inputs = ["image": try records("vae.image"), "noise": try records("vae.sample_noise"), "latents": try records("vae.decoder_latents")]
        for (backend, dtype, tolerance) in try Self.backends() {
            let outputs = try Self.run(source: source, backend: backend, dtype: dtype, inputs: inputs) { weights, x in
                let (mean, logVariance) = try model.encode(x["image"]!, weights: weights)
                let sample = try model.sample(mean: mean, logVariance: logVariance, noise: x["noise"]!, graph: weights.graph)
                return [mean, logVariance, sample, try model.decode(x["latents"]!, weights: weights)]
            }
            let label = "\(label)\(family) vae \(backend.name) \(dtype.shortName)"
            Self.expectClose(outputs[0], try records("vae.latent_mean"), tolerance, label + " mean")
            Self.expectClose(outputs[1], try records("vae.latent_logvar"), tolerance, label + " logvar")
            Self.expectClose(outputs[2], try records("vae.latent_sample"), tolerance, label + " sample")
            Self.expectClose(outputs[3], try records("vae.decoded"), tolerance, label + " decoded")
        }
    }

    // MARK: U-Net

    @Test(arguments: [("sd1", "unet", "diffusers/unet"), ("sd2", "unet", "diffusers/unet"), ("sdxl", "unet", "diffusers/unet"),
                      ("sd1", "inpaint_unet", "inpaint_unet")])
    func unet(_ family: String, _ record: String, _ path: String) throws {
        let folder = Self.root.appendingPathComponent("\(family)/\(path)")
        let model = UNet2DConditionModel(configuration: try UNetConfiguration.load(folder.appendingPathComponent("config.json")))
        try Self.expectUNet(model, try SafeTensorsSource.component(folder: folder, baseName: "diffusion_pytorch_model"), family, record)
    }

    /// One denoising call on every backend against `family`'s `record` (`unet` or `inpaint_unet`).
    static func expectUNet(_ model: UNet2DConditionModel, _ source: TensorSource, _ family: String, _ record: String, label: String = "") throws {
        let records = try Self.records(family)
        var inputs = ["sample": try records("\(record).sample"), "t": try records("\(record).timestep"),
                      "text": try records("\(record).encoder_hidden_states")]
        let conditioned = records.file.entries["\(record).text_embeds"] != nil
        if conditioned {
            inputs["text_embeds"] = try records("\(record).text_embeds")
            inputs["time_ids"] = try records("\(record).time_ids")
        }
        for (backend, dtype, tolerance) in try Self.backends() {
            let outputs = try Self.run(source: source, backend: backend, dtype: dtype, inputs: inputs) { weights, x in
                let added = conditioned ? UNet2DConditionModel.AddedConditioning(textEmbeddings: x["text_embeds"]!, timeIDs: x["time_ids"]!) : nil
                return [try model(sample: x["sample"]!, timesteps: x["t"]!, text: x["text"]!, added: added, weights: weights)]
            }
            Self.expectClose(outputs[0], try records("\(record).noise_pred"), tolerance, "\(label)\(family) \(record) \(backend.name) \(dtype.shortName)")
        }
    }
}
