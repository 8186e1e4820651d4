import Foundation
import KilnGraph
import KilnModels
import KilnSampling

/// FLUX.1 (dev and schnell) text-to-image denoising on any backend, step for step as diffusers'
/// `FluxPipeline` computes it: noise drawn as `randn [B, 16, h, w]` from a torch-compatible
/// generator and packed into 2x2 patches, sigmas `linspace(1, 1/n, n)` shifted with `mu` from
/// the image's token count, FLUX.1-dev's guidance embedded (no classifier-free batch), Euler
/// steps on the flow velocity.
///
/// The text states come in ready: T5's last hidden state `[B, Lt, 4096]` and CLIP-L's pooled
/// output `[B, 768]`, what FluxPipeline's `prompt_embeds` / `pooled_prompt_embeds` hold.
public final class FluxPipeline {
    public let model: FluxTransformer2DModel
    public let weights: TensorSource
    public let schedulerConfiguration: SchedulerConfiguration
    public let backend: Backend
    /// Storage type of weights and activations on the backend: the 12B transformer stays f16 on
    /// a GPU (24 GB; f32 would double it; the Vulkan backend has no bf16 storage yet).
    public let dtype: DType
    /// The VAE's pixel-to-latent factor (8 for FLUX.1's VAE).
    public let vaeScaleFactor: Int
    /// Whether the flow-matching Euler step runs in the backend's pass after the transformer
    /// (`Graph.guidedStep`); false keeps it on the host. The two agree up to f32 rounding.
    public var fusesGuidedStep = true
    private var denoiser: (key: String, value: FluxDenoiser)?

    public init(model: FluxTransformer2DModel, weights: TensorSource, schedulerConfiguration: SchedulerConfiguration,
                vaeScaleFactor: Int = 8, backend: Backend, dtype: DType = .float16) {
        self.model = model
        self.weights = weights
        self.schedulerConfiguration = schedulerConfiguration
        self.vaeScaleFactor = vaeScaleFactor
        self.backend = backend
        self.dtype = dtype
    }

    /// Opens a diffusers FluxPipeline folder's transformer and scheduler; `singleFile`, when
    /// given, supplies the transformer instead (its configuration inferred from its weights).
    public convenience init(folder: URL, singleFile: FluxSingleFile? = nil, backend: Backend, dtype: DType = .float16) throws {
        let index = folder.appendingPathComponent("model_index.json")
        guard let data = try? Data(contentsOf: index),
              let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw FluxPipelineError.invalidModel("\(index.path) is missing or not a JSON object")
        }
        guard let name = json["_class_name"] as? String, name == "FluxPipeline" else {
            throw FluxPipelineError.invalidModel("\(index.path): _class_name is \(json["_class_name"] ?? "missing"), expected FluxPipeline")
        }
        let transformerFolder = folder.appendingPathComponent("transformer")
        var configuration = try FluxTransformerConfiguration.load(transformerFolder.appendingPathComponent("config.json"))
        let weights: TensorSource
        if let singleFile {
            weights = try singleFile.transformer()
            // The file decides what runs (a schnell file with a dev folder has no guidance
            // embedding); only the rotary axes are not in the weights.
            configuration = try FluxOriginalKeyNames.inferConfiguration(weights, axesDimensionsRope: configuration.axesDimensionsRope)
        } else {
            weights = try SafeTensorsSource.component(folder: transformerFolder, baseName: "diffusion_pytorch_model")
        }
        let scheduler = try SchedulerConfiguration.load(from: folder.appendingPathComponent("scheduler/scheduler_config.json"))
        // FluxPipeline: 2^(VAE levels - 1), or 8 without a VAE.
        let vaeConfiguration = folder.appendingPathComponent("vae/config.json")
        let factor = FileManager.default.fileExists(atPath: vaeConfiguration.path)
            ? try AutoencoderKLConfiguration.load(vaeConfiguration).downscaleFactor : 8
        self.init(model: FluxTransformer2DModel(configuration: configuration), weights: weights, schedulerConfiguration: scheduler,
                  vaeScaleFactor: factor, backend: backend, dtype: dtype)
    }

    /// Channels of the unpacked latents (16 for FLUX.1).
    public var latentChannels: Int { model.configuration.inChannels / 4 }

    /// The settings of one denoising run.
    public struct Request: Sendable {
        public var width: Int
        public var height: Int
        public var steps: Int
        /// FLUX.1-dev's embedded guidance (`--cfg-scale`, diffusers' default 3.5); ignored by
        /// schnell, whose transformer has no guidance embedding (as diffusers ignores it).
        public var guidance: Float
        public var seed: UInt64

        public init(width: Int, height: Int, steps: Int, guidance: Float = 3.5, seed: UInt64) {
            self.width = width
            self.height = height
            self.steps = steps
            self.guidance = guidance
            self.seed = seed
        }
    }

    /// Where a denoising run starts for image-to-image (FluxImg2ImgPipeline): `encode` turns the
    /// init image into scaled latents `[1 or B, C, h, w]` with the run's generator (its one draw
    /// comes before the noise's, as diffusers orders them); `strength` in (0, 1] is the share of
    /// the schedule that runs. With `mask` (`[1, 1, H, W]` in pixels, 1 = repaint) it is
    /// FluxInpaintPipeline: after every step the kept region is replaced by the image's latents
    /// noised to the next step's level with the initial noise.
    public struct ImageStart {
        public var encode: (NoiseGenerator) throws -> ShapedArray
        public var strength: Float
        public var mask: ShapedArray?

        public init(strength: Float, mask: ShapedArray? = nil, encode: @escaping (NoiseGenerator) throws -> ShapedArray) {
            self.encode = encode
            self.strength = strength
            self.mask = mask
        }
    }

    /// diffusers' `get_timesteps`: `int(steps - min(steps * strength, steps))` leading steps are
    /// skipped, computed in f64 from the strength's decimal value as Python holds it (`0.6`, not
    /// f32's 0.6000000238, whose product with 5 would skip one step fewer).
    public static func skippedSteps(steps: Int, strength: Float) -> Int {
        let kept = min(Double(steps) * strength.asTypedDecimal, Double(steps))
        return Int(max(Double(steps) - kept, 0))
    }

    /// Inpainting's state in packed `[B, Li, 4C]` form: image latents, initial noise, mask.
    private struct PackedBlend {
        let image: ShapedArray
        let noise: ShapedArray
        let mask: ShapedArray

        /// `(1 - mask) * image noised to nextTimestep (clean after the last step) + mask * latents`.
        func apply(to latents: ShapedArray, nextTimestep: Double?, scheduler: FlowMatchEulerDiscreteScheduler) throws -> ShapedArray {
            var known = image
            if let nextTimestep { known = try scheduler.addNoise(to: image, noise: noise, timestep: nextTimestep) }
            var result = latents
            for index in result.scalars.indices {
                let weight = mask.scalars[index]
                result.scalars[index] = (1 - weight) * known.scalars[index] + weight * latents.scalars[index]
            }
            return result
        }
    }

    /// Runs the loop from fresh noise (or from `image` noised to the first kept step) and
    /// returns the final latents unpacked to `[B, C, h, w]` (what `--save-latents` writes;
    /// FluxPipeline's `output_type="latent"` gives them packed). `textStates [B, Lt, joint_dim]`,
    /// `pooled [B, P]`; `progress(step, stepCount)` after each step.
    public func denoise(_ request: Request, textStates: ShapedArray, pooled: ShapedArray, image: ImageStart? = nil,
                        isCancelled: () -> Bool = { false }, progress: (Int, Int) -> Void = { _, _ in }) throws -> ShapedArray {
        let c = model.configuration
        let factor = vaeScaleFactor * 2
        guard request.width >= factor, request.height >= factor, request.width % factor == 0, request.height % factor == 0 else {
            throw FluxPipelineError.invalidRequest("width and height must be positive multiples of \(factor) (VAE factor \(vaeScaleFactor) x 2x2 packing), got \(request.width)x\(request.height)")
        }
        guard textStates.shape.count == 3, textStates.shape[2] == c.jointAttentionDimension else {
            throw FluxPipelineError.invalidRequest("text states \(textStates.shape) are not [B, L, \(c.jointAttentionDimension)]")
        }
        let batch = textStates.shape[0]
        guard pooled.shape == [batch, c.pooledProjectionDimension] else {
            throw FluxPipelineError.invalidRequest("pooled text embedding \(pooled.shape) is not [\(batch), \(c.pooledProjectionDimension)]")
        }
        let (height, width) = FluxLatents.latentSize(width: request.width, height: request.height, vaeScaleFactor: vaeScaleFactor)
        let (rows, columns) = (height / 2, width / 2)
        let latentShape = [batch, latentChannels, height, width]

        let scheduler = try FlowMatchEulerDiscreteScheduler(configuration: schedulerConfiguration)
        try FluxSchedule.apply(to: scheduler, steps: request.steps, imageSequenceLength: rows * columns)
        var timesteps = scheduler.timesteps
        let generator = TorchGenerator(seed: request.seed)
        var latents: ShapedArray                                                                                  // [B, C, h, w]
        var blend: PackedBlend?
        if let image {
            guard image.strength > 0, image.strength <= 1 else {
                throw FluxPipelineError.invalidRequest("strength must be in (0, 1], got \(image.strength)")
            }
            let start = Self.skippedSteps(steps: request.steps, strength: image.strength)
            timesteps = Array(timesteps.dropFirst(start))
            guard let first = timesteps.first else {
                throw FluxPipelineError.invalidRequest("strength \(image.strength) leaves no step of \(request.steps)")
            }
            scheduler.setBeginIndex(start)
            var encoded = try image.encode(generator)
            guard encoded.shape.count == 4, encoded.shape.dropFirst() == latentShape.dropFirst(), batch % encoded.shape[0] == 0 else {
                throw FluxPipelineError.invalidLatents("init image latents \(encoded.shape) do not fit \(latentShape)")
            }
            encoded = encoded.repeated(batch / encoded.shape[0])
            let noise = generator.normal(shape: latentShape)
            latents = try scheduler.addNoise(to: encoded, noise: noise, timestep: first)
            if let mask = image.mask {
                guard mask.shape.count == 4, mask.shape[0] == 1, mask.shape[1] == 1 else {
                    throw FluxPipelineError.invalidRequest("the mask must be [1, 1, H, W], got \(mask.shape)")
                }
                // torch's nearest interpolation to the latent size, on every channel.
                let small = StableDiffusionPipeline.nearestDownsampled(mask, height: height, width: width)
                let channels = ShapedArray.concatenatedChannels(Array(repeating: small, count: latentChannels)).repeated(batch)
                blend = PackedBlend(image: try FluxLatents.pack(encoded), noise: try FluxLatents.pack(noise), mask: try FluxLatents.pack(channels))
            }
        } else {
            scheduler.setBeginIndex(0)
            latents = generator.normal(shape: latentShape)
        }
        var packed = try FluxLatents.pack(latents)                                                                // [B, Li, 4C]
        let device = DeviceStep.chosen(for: scheduler, latentShape: packed.shape, enabled: fusesGuidedStep)
        let denoiser = try preparedDenoiser(batch: batch, rows: rows, columns: columns, textLength: textStates.shape[1], deviceStep: device?.step)
        let conditioning = FluxDenoiser.Conditioning(textStates: textStates, pooled: pooled,
                                                     guidance: c.guidanceEmbeds ? request.guidance : nil)
        for (index, timestep) in timesteps.enumerated() {
            if isCancelled() { throw PipelineError.cancelled }
            // FluxPipeline passes the f32 timestep divided by 1000 in f32.
            if let affine = device?.scheduler {
                let step = try affine.affineStep(timestep: timestep, count: packed.scalars.count, noise: generator)
                packed = try denoiser.step(packed, sigma: Float(timestep) / 1000, step: step, conditioning: conditioning)
            } else {
                let velocity = try denoiser.predict(packed, sigma: Float(timestep) / 1000, conditioning: conditioning)
                packed = try scheduler.step(modelOutput: velocity, timestep: timestep, sample: packed, noise: generator)
            }
            if let blend {
                packed = try blend.apply(to: packed, nextTimestep: timesteps.dropFirst(index + 1).first, scheduler: scheduler)
            }
            progress(index + 1, timesteps.count)
        }
        return try FluxLatents.unpack(packed, height: height, width: width)
    }

    /// The transformer prepared for this shape, reused while the shape stays the same; a new
    /// shape replaces it so the device never holds two copies of the weights.
    private func preparedDenoiser(batch: Int, rows: Int, columns: Int, textLength: Int, deviceStep: DeviceStep?) throws -> FluxDenoiser {
        let key = "\([batch, rows, columns, textLength])-\(deviceStep?.description ?? "prediction")"
        if let denoiser, denoiser.key == key { return denoiser.value }
        denoiser = nil
        let prepared = try FluxDenoiser(model: model, weights: weights, batch: batch, patchRows: rows, patchColumns: columns,
                                        textLength: textLength, backend: backend, dtype: dtype, deviceStep: deviceStep)
        denoiser = (key, prepared)
        return prepared
    }
}
