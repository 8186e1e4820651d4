import KilnGraph
import KilnSampling

/// The one sampling loop of every family. Per step: stop if cancelled; build the model batch
/// (guidance's layout); scale it for the scheduler; append inpainting channels; then either run
/// the denoiser with guidance and the step on the device, or predict, mix and step on the host;
/// paste the kept region back (inpainting); check every value is finite; report progress.
struct DenoisingLoop {
    let plan: DenoisingPlan
    let denoiser: PreparedDenoiser
    /// The scheduler in its affine form, when guidance and the step run on the device.
    let deviceScheduler: (any AffineStepScheduler)?
    let inpaintingChannels: ShapedArray?
    /// In the loop's layout.
    let blend: LatentBlend?
    let projection: LatentRGBProjection?
    let tinyDecoder: TinyAutoencoder?
    /// Image pixels per latent pixel.
    let scale: Int

    /// Runs every timestep from `state` (the loop's latents in its layout, in guidance's state
    /// form) and returns the last state.
    func run(
        from state: ShapedArray, generator: NoiseGenerator, clock: StageClock, progress: (GenerationProgress) -> Void,
        isCancelled: () -> Bool
    ) throws -> ShapedArray {
        let scheduler = plan.scheduler, guidance = plan.guidance, count = plan.timesteps.count
        var state = state
        for (index, timestep) in plan.timesteps.enumerated() {
            if isCancelled() { throw PipelineError.cancelled }
            var input = guidance.modelInput(state)
            if plan.scalesModelInput { input = try scheduler.scaleModelInput(input, timestep: timestep) }
            let sample = plan.stepsFromScaledInput ? input : state
            if let inpaintingChannels { input = ShapedArray.concatenatedChannels([input, inpaintingChannels]) }

            if let deviceScheduler {
                let step = try deviceScheduler.affineStep(timestep: timestep, count: sample.scalars.count, noise: generator)
                state = try denoiser.step(input, latents: sample, timestep: timestep, step: step, guidanceScale: guidance.scale)
            } else {
                var prediction = guidance.combined(try denoiser.predict(input, timestep: timestep))
                if prediction.shape[1] > sample.shape[1], prediction.shape.count == 4 {
                    // Learned sigma: the variance channels after the noise are not stepped.
                    prediction = prediction.firstChannels(sample.shape[1])
                }
                state = try scheduler.step(modelOutput: prediction, timestep: timestep, sample: sample, noise: generator)
            }
            if let blend {
                state = try blend.apply(to: state, nextTimestep: plan.timesteps.dropFirst(index + 1).first, scheduler: scheduler)
            }
            try Finiteness.require(state, stage: .denoising, step: index + 1, "the latents after step \(index + 1) of \(count)")
            progress(GenerationProgress(
                stage: .denoising, step: index + 1, stepCount: count, lastSeconds: clock.lap(), elapsedSeconds: clock.elapsed,
                latents: LatentSnapshot(values: guidance.latents(from: state), layout: plan.layout, projection: projection,
                                        tinyDecoder: tinyDecoder, scale: scale)))
        }
        return state
    }
}

/// The check that turns a NaN or infinity into an error naming where it appeared, instead of a
/// gray or black image.
enum Finiteness {
    static func require(_ values: ShapedArray, stage: GenerationProgress.Stage, step: Int? = nil, _ what: String) throws {
        if let bad = values.scalars.firstIndex(where: { !$0.isFinite }) {
            throw PipelineError.nonFinite(stage: stage, step: step, detail: "\(what) hold \(values.scalars[bad]) at element \(bad) of \(values.shape)")
        }
    }

    /// Every floating-point tensor of `tensors` (a stage's outputs, by name).
    static func require(_ tensors: [String: HostTensor], stage: GenerationProgress.Stage, _ what: String) throws {
        for (name, tensor) in tensors.sorted(by: { $0.key < $1.key }) where tensor.dtype != .int32 {
            try require(ShapedArray(tensor), stage: stage, "\(what) ('\(name)')")
        }
    }
}

extension ShapedArray {
    /// The first `channels` channels of `[M, C', ...]`.
    func firstChannels(_ channels: Int) -> ShapedArray {
        let spatial = shape.dropFirst(2).reduce(1, *)
        let perImage = shape[1] * spatial
        var kept = [Float]()
        kept.reserveCapacity(shape[0] * channels * spatial)
        for image in 0..<shape[0] {
            kept += scalars[(image * perImage)..<(image * perImage + channels * spatial)]
        }
        return ShapedArray(shape: [shape[0], channels] + shape.dropFirst(2), scalars: kept)
    }
}
