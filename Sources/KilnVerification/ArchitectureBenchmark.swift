import Foundation
import KilnGraph
import KilnModels
import KilnVulkan

/// One stage of a full-size architecture (text encoder, denoiser, VAE decode) built with
/// synthetic weights, ready to time.
public struct BenchmarkStage: Sendable {
    public enum Work: Sendable {
        /// One graph: builds it and returns its outputs, random per-run inputs and the constants
        /// the model computes on the host beside its weights (DiT's position table).
        case graph(@Sendable (Graph, WeightScope) throws -> BuiltGraph)
        /// Decoding `latents` `[B, L, h, w]`, in tiles when the untiled graph's activations exceed
        /// the backend's budget (see `TiledAutoencoder`).
        case autoencoderDecode(AutoencoderKLConfiguration, latents: HostTensor)
    }

    public let name: String
    public let work: Work
    /// The stage's weights: synthetic for `--arch`, a checkpoint's for `--model`.
    public let weights: TensorSource

    public init(name: String, work: Work, weights: TensorSource = SyntheticTensors()) {
        self.name = name
        self.work = work
        self.weights = weights
    }

    /// Builds the stage's whole graph (the untiled one for VAE decoding): outputs and per-run inputs.
    public func build(_ graph: Graph, _ weights: WeightScope) throws -> BuiltGraph {
        switch work {
        case .graph(let build):
            return try build(graph, weights)
        case .autoencoderDecode(let configuration, let latents):
            let dtype = weights.binder.dtype
            let image = try AutoencoderKL(configuration: configuration).decode(graph.input("latents", latents.shape, dtype: dtype), weights: weights)
            var stored = latents
            stored.dtype = dtype
            return BuiltGraph(outputs: [image], inputs: ["latents": stored])
        }
    }
}

/// A stage's graph as built: its outputs, per-run inputs, and constants computed on the host.
public struct BuiltGraph {
    public let outputs: [Tensor]
    public let inputs: [String: HostTensor]
    public let hostConstants: [String: HostTensor]

    public init(outputs: [Tensor], inputs: [String: HostTensor], hostConstants: [String: HostTensor] = [:]) {
        self.outputs = outputs
        self.inputs = inputs
        self.hostConstants = hostConstants
    }
}

/// What `kiln bench` measures for one stage.
public struct BenchmarkStageResult: Codable, Sendable {
    public let name: String
    public let coldStartSeconds: Double
    public let medianMilliseconds: Double
    public let minMilliseconds: Double
    public let iterations: Int
    public let iterationsPerSecond: Double
    public let gflop: Double
    public let gflopPerSecond: Double
    public let peakDeviceBytes: Int
    /// How a VAE stage was split, e.g. `3x3 tiles of 512 px, 4 graphs`; nil for one graph.
    public let tiling: String?
    public let profile: [OperationProfile]?

    enum CodingKeys: String, CodingKey {
        case name, iterations, gflop, profile, tiling
        case coldStartSeconds = "cold_start_s"
        case medianMilliseconds = "median_ms"
        case minMilliseconds = "min_ms"
        case iterationsPerSecond = "iterations_per_s"
        case gflopPerSecond = "gflop_per_s"
        case peakDeviceBytes = "peak_device_bytes"
    }
}

/// GPU time of one op kind within a stage, from timestamp queries.
public struct OperationProfile: Codable, Sendable {
    public let operation: String
    public let count: Int
    public let totalMilliseconds: Double
    public let share: Double
    public let gflopPerSecond: Double

    enum CodingKeys: String, CodingKey {
        case operation, count, share
        case totalMilliseconds = "total_ms"
        case gflopPerSecond = "gflop_per_s"
    }
}

/// Full-size architectures for `kiln bench`.
public enum ArchitectureBenchmark {
    public static let architectures = StableDiffusionArchitecture.names + transformerArchitectures

    /// The stages of architecture `name` at `width` x `height` with `batch` images per denoiser
    /// call (2 = one CFG step).
    public static func stages(_ name: String, width: Int, height: Int, batch: Int) throws -> [BenchmarkStage] {
        if transformerArchitectures.contains(name) { return try transformerStages(name, width: width, height: height, batch: batch) }
        let architecture = try StableDiffusionArchitecture.named(name)
        let text = ComponentTensorSource(architecture.textEncoders.indices.map { (textEncoderName($0), SyntheticTensors()) })
        return try stableDiffusion(
            architecture, weights: (text, architecture.textEncoders.map { _ in "text_model." }, SyntheticTensors(), SyntheticTensors()),
            width: width, height: height, batch: batch)
    }

    /// The stages of a real checkpoint, with its own weights.
    public static func stages(_ checkpoint: StableDiffusionCheckpoint, width: Int, height: Int, batch: Int) throws -> [BenchmarkStage] {
        let encoders = [checkpoint.textEncoder] + (checkpoint.textEncoder2.map { [$0] } ?? [])
        let text = ComponentTensorSource(encoders.enumerated().map { (textEncoderName($0.offset), $0.element.weights) })
        return try stableDiffusion(
            StableDiffusionArchitecture(checkpoint),
            weights: (text, encoders.map { CLIPTextModel.detectPrefix(in: $0.weights) }, checkpoint.unet.weights, checkpoint.vae.weights),
            width: width, height: height, batch: batch)
    }

    private static func textEncoderName(_ index: Int) -> String { index == 0 ? "text_encoder" : "text_encoder_\(index + 1)" }

    /// A Stable Diffusion architecture's text encoders (with the hidden states its pipeline reads),
    /// U-Net and VAE decoder. `weights.text` holds the encoders under `text_encoder`,
    /// `text_encoder_2`, each with its CLIP key prefix in `weights.textPrefixes`.
    static func stableDiffusion(
        _ architecture: StableDiffusionArchitecture,
        weights sources: (text: TensorSource, textPrefixes: [String], unet: TensorSource, vae: TensorSource),
        width: Int, height: Int, batch: Int
    ) throws -> [BenchmarkStage] {
        let unet = architecture.unet, vae = architecture.vae, encoders = architecture.textEncoders
        let factor = vae.downscaleFactor
        guard width > 0, height > 0, width % factor == 0, height % factor == 0 else {
            throw GraphError("bench", "width \(width) and height \(height) must be positive multiples of the VAE's factor \(factor) for \(architecture.name)")
        }
        let (latentHeight, latentWidth) = (height / factor, width / factor)
        let sdxl = encoders.count == 2
        var random = SeededRandom(seed: 7)
        let ids = (0..<(batch * 77)).map { _ in Int32(random.next() % 49407) }
        let rows = CLIPTextModel.pooledRows(ids: ids, sequenceLength: 77)
        let latents = random.normals(batch * 4 * latentHeight * latentWidth)
        let context = random.normals(batch * 77 * architecture.contextWidth)
        let pooledWidth = encoders.last?.projectionSize ?? 0
        let pooled = random.normals(batch * pooledWidth)
        let sizes: [Float] = [Float(height), Float(width), 0, 0, Float(height), Float(width)]  // original size, crop, target size
        let timeIDs = Array([[Float]](repeating: sizes, count: batch).joined())
        return [
            BenchmarkStage(name: "text", work: .graph { graph, weights in
                let idsInput = graph.input("ids", [batch, 77], dtype: .int32), rowsInput = graph.input("rows", [batch], dtype: .int32)
                var outputs: [Tensor] = []
                for (index, encoder) in encoders.enumerated() {
                    let states = try CLIPTextModel(configuration: encoder, prefix: sources.textPrefixes[index])(
                        ids: idsInput, pooledRows: rowsInput, weights: weights(textEncoderName(index)))
                    // What each pipeline reads: SDXL the penultimate states (and bigG's projection), the others the last.
                    outputs += sdxl ? [states.hiddenState(skippingLast: 1)] + (states.textEmbeddings.map { [$0] } ?? [])
                                    : [states.lastHiddenState, states.pooled]
                }
                return BuiltGraph(outputs: outputs, inputs: ["ids": HostTensor(shape: [batch, 77], integers: ids), "rows": HostTensor(shape: [batch], integers: rows)])
            }, weights: sources.text),
            BenchmarkStage(name: "unet", work: .graph { graph, weights in
                let dtype = weights.binder.dtype
                let sample = graph.input("sample", [batch, 4, latentHeight, latentWidth], dtype: dtype)
                var inputs: [String: HostTensor] = [
                    "sample": HostTensor(shape: sample.shape, scalars: latents, dtype: dtype),
                    "t": HostTensor(shape: [batch], scalars: .init(repeating: 500, count: batch), dtype: dtype),
                    "text": HostTensor(shape: [batch, 77, architecture.contextWidth], scalars: context, dtype: dtype),
                ]
                var added: UNet2DConditionModel.AddedConditioning?
                if sdxl {
                    added = .init(textEmbeddings: graph.input("text_embeds", [batch, pooledWidth], dtype: dtype),
                                  timeIDs: graph.input("time_ids", [batch, 6], dtype: dtype))
                    inputs["text_embeds"] = HostTensor(shape: [batch, pooledWidth], scalars: pooled, dtype: dtype)
                    inputs["time_ids"] = HostTensor(shape: [batch, 6], scalars: timeIDs, dtype: dtype)
                }
                let output = try UNet2DConditionModel(configuration: unet)(
                    sample: sample, timesteps: graph.input("t", [batch], dtype: dtype),
                    text: graph.input("text", [batch, 77, architecture.contextWidth], dtype: dtype), added: added, weights: weights)
                return BuiltGraph(outputs: [output], inputs: inputs)
            }, weights: sources.unet),
            BenchmarkStage(name: "vae", work: .autoencoderDecode(vae, latents: HostTensor(
                shape: [1, 4, latentHeight, latentWidth], scalars: Array(latents.prefix(4 * latentHeight * latentWidth)))),
                weights: sources.vae),
            // TAESD's decoder (64 channels, synthetic weights), the fast alternative to the VAE.
            BenchmarkStage(name: "taesd", work: .graph { graph, weights in
                let dtype = weights.binder.dtype
                let input = graph.input("latents", [1, 4, latentHeight, latentWidth], dtype: dtype)
                let image = try AutoencoderTiny(configuration: AutoencoderTinyConfiguration(latentChannels: 4)).decode(input, weights: weights)
                return BuiltGraph(outputs: [image], inputs: ["latents": HostTensor(
                    shape: input.shape, scalars: Array(latents.prefix(4 * latentHeight * latentWidth)), dtype: dtype)])
            }),
        ]
    }

    /// Prepares `stage` on `backend` and runs it once (the cold start: everything until the first
    /// result, so a driver that compiles kernels at their first dispatch is counted), then
    /// `warmup - 1` more untimed runs, then `iterations` timed ones. VAE stages tile when their
    /// activations exceed `activationBudgetBytes` (the backend's own budget when nil).
    public static func measure(
        _ stage: BenchmarkStage, backend: Backend, dtype: DType, iterations: Int, warmup: Int, profile: Bool,
        activationBudgetBytes: Int? = nil
    ) throws -> BenchmarkStageResult {
        switch stage.work {
        case .graph(let build):
            try measureGraph(stage.name, build: build, weights: stage.weights, backend: backend, dtype: dtype, iterations: iterations, warmup: warmup, profile: profile)
        case .autoencoderDecode(let configuration, let latents):
            try measureDecode(
                stage.name, configuration: configuration, latents: latents, weights: stage.weights, backend: backend, dtype: dtype,
                iterations: iterations, warmup: warmup, profile: profile, activationBudgetBytes: activationBudgetBytes)
        }
    }

    private static func measureGraph(
        _ name: String, build: (Graph, WeightScope) throws -> BuiltGraph,
        weights: TensorSource, backend: Backend, dtype: DType, iterations: Int, warmup: Int, profile: Bool
    ) throws -> BenchmarkStageResult {
        let graph = Graph()
        let binder = WeightBinder(graph: graph, source: weights, dtype: dtype)
        let built = try build(graph, WeightScope(binder))
        let (outputs, inputs) = (built.outputs, built.inputs)
        let start = Date()
        let prepared = try prepare(backend: backend, graph: graph, outputs: outputs, constants: binder.constants().adding(built.hostConstants), profile: profile)
        _ = try prepared.run(inputs)
        let coldStart = Date().timeIntervalSince(start)
        var lastProfile: [OperationTiming] = []
        let times = try time(iterations: iterations, warmup: max(warmup - 1, 0)) {
            _ = try prepared.run(inputs)
            lastProfile = (prepared as? VulkanPreparedGraph)?.lastProfile ?? []
        }
        return result(
            name, coldStart: coldStart, times: times, flops: graph.flops(of: outputs),
            peakDeviceBytes: (prepared as? VulkanPreparedGraph)?.deviceBytes ?? 0, tiling: nil, profile: profile ? lastProfile : nil)
    }

    /// `backend.prepare`, or the profiled variant on Vulkan when `profile` is set.
    static func prepare(backend: Backend, graph: Graph, outputs: [Tensor], constants: any ConstantValues, profile: Bool) throws -> any PreparedGraph {
        if profile, let vulkan = backend as? VulkanBackend {
            return try vulkan.prepareProfiled(graph, outputs: outputs, constants: constants)
        }
        return try backend.prepare(graph, outputs: outputs, constants: constants)
    }

    /// Runs `body` `warmup` times untimed, then at least once timed; returns sorted seconds.
    static func time(iterations: Int, warmup: Int, _ body: () throws -> Void) throws -> [Double] {
        for _ in 0..<warmup { try body() }
        var times: [Double] = []
        for _ in 0..<max(iterations, 1) {
            let start = Date()
            try body()
            times.append(Date().timeIntervalSince(start))
        }
        return times.sorted()
    }

    static func result(
        _ name: String, coldStart: Double, times: [Double], flops: Double, peakDeviceBytes: Int, tiling: String?, profile: [OperationTiming]?
    ) -> BenchmarkStageResult {
        let median = times[times.count / 2], gflop = flops / 1e9
        return BenchmarkStageResult(
            name: name, coldStartSeconds: coldStart, medianMilliseconds: median * 1e3, minMilliseconds: times[0] * 1e3,
            iterations: times.count, iterationsPerSecond: 1 / median, gflop: gflop, gflopPerSecond: gflop / median,
            peakDeviceBytes: peakDeviceBytes, tiling: tiling, profile: profile.map(summarize))
    }

    /// Per op kind: count, total GPU time, share of the stage, GFLOP/s.
    static func summarize(_ timings: [OperationTiming]) -> [OperationProfile] {
        let total = timings.reduce(0) { $0 + $1.seconds }
        return Dictionary(grouping: timings, by: \.operation).map { operation, group in
            let seconds = group.reduce(0) { $0 + $1.seconds }
            let flops = group.reduce(0) { $0 + $1.flops }
            return OperationProfile(operation: operation, count: group.count, totalMilliseconds: seconds * 1e3,
                                    share: total > 0 ? seconds / total : 0, gflopPerSecond: seconds > 0 ? flops / seconds / 1e9 : 0)
        }.sorted { $0.totalMilliseconds > $1.totalMilliseconds }
    }
}
