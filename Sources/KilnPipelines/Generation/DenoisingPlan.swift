import KilnSampling

/// What one request resolves to before any model runs, for every family: the scheduler with
/// its timesteps (cut by strength), the shapes, how guidance batches the model, and the few
/// places where a family's diffusers pipeline departs from the common loop.
struct DenoisingPlan {
    let request: GenerationRequest
    let scheduler: any Scheduler
    /// The model calls to make, in order.
    let timesteps: [Double]
    /// `[N, C, h, w]`, N = the request's image count.
    let latentShape: [Int]
    let layout: LatentLayout
    let guidance: LoopGuidance
    /// Whether the model input goes through `scaleModelInput` (the flow-matching pipelines skip it).
    var scalesModelInput = true
    /// DiTPipeline steps from the scaled input rather than from the latents before scaling.
    var stepsFromScaledInput = false
    /// Whether the first noise is multiplied by the scheduler's init sigma (DiTPipeline does not).
    var scalesInitialNoise = true
    /// 9-channel inpainting U-Nets take the mask and masked image's latents with every input.
    var appendsInpaintingChannels = false
    /// Whether guidance and the step may run in the denoiser's graph (`DeviceStep`) when the
    /// scheduler's steps are affine.
    var allowsDeviceStep = true

    init(request: GenerationRequest, scheduler: any Scheduler, timesteps: [Double], latentShape: [Int], layout: LatentLayout = .spatial,
         guidance: LoopGuidance) {
        self.request = request
        self.scheduler = scheduler
        self.timesteps = timesteps
        self.latentShape = latentShape
        self.layout = layout
        self.guidance = guidance
    }

    /// The loop's latents in its layout: `[N, C, h, w]`, or FLUX's `[N, L, 4C]`.
    var stateShape: [Int] {
        guard case .packed(let height, let width) = layout else { return latentShape }
        return [latentShape[0], (height / 2) * (width / 2), latentShape[1] * 4]
    }

    /// The denoiser's batch: doubled under guidance.
    var modelBatch: Int { latentShape[0] * guidance.batchMultiplier }
}

/// Where image-to-image starts in a schedule of `steps` (diffusers' `get_timesteps`). The SD
/// pipelines keep `int(steps * strength)` steps; the flow pipelines skip
/// `int(steps - steps * strength)`, which rounds the other way for fractional products.
enum ScheduleStart {
    case keepsTruncatedSteps
    case skipsTruncatedSteps

    /// Steps skipped at the start, computed from the strength's decimal value as Python holds it
    /// (`0.6`, not f32's 0.6000000238).
    func skippedSteps(steps: Int, strength: Float) -> Int {
        let kept = min(Double(steps) * strength.asTypedDecimal, Double(steps))
        switch self {
        case .keepsTruncatedSteps: return max(steps - Int(kept), 0)
        case .skipsTruncatedSteps: return Int(max(Double(steps) - kept, 0))
        }
    }

    /// The timesteps an image-to-image or inpainting request runs: those after the skipped steps
    /// (times the scheduler's order), with the scheduler told where to begin, as diffusers'
    /// `set_begin_index`; a request left with none is refused.
    func timesteps(_ scheduler: any Scheduler, request: GenerationRequest) throws -> [Double] {
        let skipped = skippedSteps(steps: request.steps, strength: request.mode.strength)
        if request.steps - skipped < 1 {
            throw PipelineError.invalidRequest(
                "strength \(request.mode.strength) with \(request.steps) steps leaves no denoising step: raise the strength or the steps")
        }
        scheduler.setBeginIndex(skipped * scheduler.order)
        return Array(scheduler.timesteps.dropFirst(skipped * scheduler.order))
    }
}
