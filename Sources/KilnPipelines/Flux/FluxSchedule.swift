import KilnSampling

/// FluxPipeline's schedule: unshifted sigmas `linspace(1, 1/n, n)`, shifted by the scheduler,
/// with `mu` for dynamic shifting from the image's token count (diffusers' `calculate_shift`
/// with the scheduler config's `base_image_seq_len`, `max_image_seq_len`, `base_shift`,
/// `max_shift`; FLUX.1-dev shifts dynamically, schnell's config does not and ignores `mu`).
public enum FluxSchedule {
    /// `np.linspace(1.0, 1/steps, steps)` in f64.
    public static func sigmas(steps: Int) -> [Double] {
        guard steps > 1 else { return steps == 1 ? [1] : [] }
        let last = 1 / Double(steps)
        // numpy's linspace: start + i * step, with the endpoint written exactly.
        let step = (last - 1) / Double(steps - 1)
        return (0..<steps).map { $0 == steps - 1 ? last : 1 + Double($0) * step }
    }

    /// `calculate_shift` for `imageSequenceLength` packed tokens.
    public static func mu(imageSequenceLength: Int, configuration: SchedulerConfiguration) -> Double {
        configuration.dynamicShift(imageSequenceLength: imageSequenceLength)
    }

    /// Sets `scheduler`'s timesteps as FluxPipeline's `retrieve_timesteps(sigmas=..., mu=...)` does.
    /// A scheduler that takes no custom sigmas is refused: FLUX's schedule is defined by them.
    public static func apply(to scheduler: any Scheduler, steps: Int, imageSequenceLength: Int) throws {
        guard steps >= 1 else { throw PipelineError.invalidRequest("steps must be at least 1, got \(steps)") }
        guard let flow = scheduler as? FlowMatchEulerDiscreteScheduler else {
            throw PipelineError.unsupported("FLUX needs a flow-matching scheduler that takes custom sigmas (flow_euler), not \(type(of: scheduler))")
        }
        try flow.setTimesteps(sigmas: sigmas(steps: steps), mu: mu(imageSequenceLength: imageSequenceLength, configuration: flow.configuration))
    }
}
