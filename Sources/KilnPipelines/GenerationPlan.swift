import KilnGraph
import KilnModels
import KilnSampling

/// What one request resolves to before any model runs: the checked settings, the scheduler with
/// its timesteps (cut by `strength` as diffusers' `get_timesteps` cuts them) and the shapes.
struct GenerationPlan {
    let scheduler: any Scheduler
    /// The model calls to make, in order.
    let timesteps: [Double]
    let unet: StableDiffusionCheckpoint.Component<UNetConfiguration>
    let usesInpaintingUNet: Bool
    /// Classifier-free guidance runs an unconditional branch: diffusers' `guidance_scale > 1`,
    /// except for LCM-distilled U-Nets, which take the scale as an embedding instead.
    let usesGuidance: Bool
    /// `[N, 4, h, w]`.
    let latentShape: [Int]
    /// `[N or 2N, C_in, h, w]`: doubled under guidance, 9 channels for an inpainting U-Net.
    let modelInputShape: [Int]

    init(request: GenerationRequest, pipeline: StableDiffusionPipeline) throws {
        try request.validate(downscaleFactor: pipeline.downscaleFactor)
        let family = pipeline.checkpoint.family
        if request.classLabels != nil {
            throw PipelineError.invalidRequest("class labels are for class-conditional models (DiT); this \(family.rawValue) model takes a prompt")
        }
        if family == .sdxl && request.mode == .inpainting {
            throw PipelineError.unsupported("inpainting with SDXL models (text-to-image and image-to-image only so far)")
        }
        if request.guidanceRescale > 0 && request.mode != .textToImage {
            throw PipelineError.invalidRequest("guidance rescale applies to text-to-image only (diffusers' \(request.mode.rawValue) pipeline has none)")
        }
        var unet = pipeline.checkpoint.unet
        if request.mode == .inpainting, let inpainting = pipeline.inpaintingUNet { unet = inpainting }
        let channels = unet.configuration.inChannels
        switch (request.mode, channels) {
        case (.inpainting, 4), (.inpainting, 9), (.textToImage, 4), (.imageToImage, 4): break
        case (_, 9):
            throw PipelineError.invalidRequest("this is a 9-channel inpainting U-Net: give it an init image and a mask")
        default:
            throw PipelineError.unsupported("a U-Net with \(channels) input channels in \(request.mode.rawValue) mode")
        }
        self.unet = unet
        usesInpaintingUNet = channels == 9

        scheduler = try Self.scheduler(for: request, configuration: pipeline.schedulerConfiguration)
        try scheduler.setTimesteps(request.steps)
        if request.mode == .textToImage {
            timesteps = scheduler.timesteps
        } else {
            // diffusers' get_timesteps: skip the first (1 - strength) of the schedule.
            let kept = min(Int(Double(request.steps) * request.strength.asTypedDecimal), request.steps)
            let start = max(request.steps - kept, 0)
            if request.steps - start < 1 {
                throw PipelineError.invalidRequest(
                    "strength \(request.strength) with \(request.steps) steps leaves no denoising step: raise the strength or the steps")
            }
            timesteps = Array(scheduler.timesteps.dropFirst(start * scheduler.order))
            scheduler.setBeginIndex(start * scheduler.order)
        }
        let factor = pipeline.downscaleFactor
        let latentChannels = pipeline.checkpoint.vae.configuration.latentChannels
        latentShape = [request.batchCount, latentChannels, request.height / factor, request.width / factor]
        usesGuidance = request.guidanceScale > 1 && unet.configuration.timestepConditionDimension == nil
        let modelBatch = usesGuidance ? 2 * request.batchCount : request.batchCount
        modelInputShape = [modelBatch, channels, latentShape[2], latentShape[3]]
    }

    /// The request's sampler and sigma spacing applied to the model's scheduler configuration,
    /// as `SamplerClass.from_config(pipe.scheduler.config, **overrides)` does.
    static func scheduler(for request: GenerationRequest, configuration: SchedulerConfiguration) throws -> any Scheduler {
        let kind = try request.sampler?.kind ?? SchedulerKind.named(in: configuration)
        if kind == .flowMatchEulerDiscrete {
            // diffusers' Stable Diffusion pipelines cannot run it either (no scale_model_input):
            // the U-Nets predict noise or v, not a flow velocity.
            throw PipelineError.unsupported("the flow_euler sampler needs a flow-matching model (SD3, FLUX); this U-Net predicts noise")
        }
        do {
            guard let sampler = request.sampler else {
                return try SchedulerKind.makeScheduler(configuration: configuration, spacing: request.sigmaSpacing)
            }
            return try sampler.makeScheduler(configuration: configuration, spacing: request.sigmaSpacing)
        } catch let error as SchedulerError {
            throw PipelineError.unsupported("\(error)")
        }
    }
}
