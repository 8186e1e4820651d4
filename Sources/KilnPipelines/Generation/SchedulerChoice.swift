import KilnSampling

/// The scheduler a request runs: its sampler and sigma spacing applied to the model's
/// scheduler configuration, as `SamplerClass.from_config(pipe.scheduler.config, **overrides)`.
enum SchedulerChoice {
    /// A fresh scheduler for `request` (schedulers keep per-run state). `flowMatching` says
    /// whether the model predicts a flow velocity (SD3, FLUX) or noise / v (the others): the
    /// two kinds of sampler do not mix.
    static func make(for request: GenerationRequest, configuration: SchedulerConfiguration, flowMatching: Bool) throws -> any Scheduler {
        let kind: SchedulerKind
        do {
            kind = try request.sampler?.kind ?? SchedulerKind.named(in: configuration)
        } catch {
            throw PipelineError.invalidModel("the scheduler config: \(error)")
        }
        if flowMatching && kind != .flowMatchEulerDiscrete {
            throw PipelineError.unsupported(
                "the \(request.sampler?.rawValue ?? kind.rawValue) sampler with a flow-matching model: it predicts a flow velocity, use flow_euler (the default)")
        }
        if !flowMatching && kind == .flowMatchEulerDiscrete {
            // diffusers' pipelines for these models cannot run it either (no scale_model_input):
            // they predict noise or v, not a flow velocity.
            throw PipelineError.unsupported("the flow_euler sampler needs a flow-matching model (SD3, FLUX); this model predicts noise")
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

    /// The Kiln name of the sampler `request` runs on a model with `configuration`.
    static func name(for request: GenerationRequest, configuration: SchedulerConfiguration) -> String {
        if let sampler = request.sampler { return sampler.rawValue }
        let kind = try? SchedulerKind.named(in: configuration)
        return SamplerName.allCases.first { $0.kind == kind }?.rawValue ?? configuration.className ?? "unknown"
    }

    /// Refuses more inference steps than the schedule was trained with, as diffusers' DDPM-style
    /// schedulers do (the timesteps would repeat or leave the trained range).
    static func checkSteps(_ request: GenerationRequest, configuration: SchedulerConfiguration) throws {
        let trained = configuration.numTrainTimesteps ?? 1000
        if request.steps > trained {
            throw PipelineError.invalidRequest("steps \(request.steps): more than the scheduler's \(trained) training timesteps")
        }
    }
}
