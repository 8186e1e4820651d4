import Foundation

/// Euler's method on the probability-flow ODE in sigma space (Karras et al., "Elucidating the
/// Design Space of Diffusion-Based Generative Models", https://arxiv.org/abs/2206.00364,
/// Algorithm 2 without churn), matching diffusers' `EulerDiscreteScheduler`.
///
/// Supports `linspace`/`leading`/`trailing` spacing, linear interpolation of sigmas, Karras and
/// exponential sigmas (with `sigma_min`/`sigma_max`), `final_sigmas_type` zero or sigma_min, and
/// epsilon/v/sample prediction.
public final class EulerDiscreteScheduler: Scheduler {
    public let configuration: SchedulerConfiguration
    public private(set) var timesteps: [Double] = []
    public private(set) var sigmas: [Float] = []
    public let order = 1
    public let isStochastic = false
    let schedule: NoiseSchedule
    private let conversion: SigmaSpacingConversion
    private var stepIndex = StepIndexTracker()

    public init(configuration: SchedulerConfiguration) throws {
        self.configuration = configuration
        self.schedule = try NoiseSchedule(configuration: configuration)
        if configuration.interpolationType.map({ $0 != "linear" }) ?? false {
            throw SchedulerError.unsupported("EulerDiscreteScheduler interpolation_type \(configuration.interpolationType ?? "")")
        }
        // Continuous timesteps change the schedule only for v-prediction (0.25 log sigma).
        if configuration.timestepType == "continuous" && configuration.predictionType == "v_prediction" {
            throw SchedulerError.unsupported("EulerDiscreteScheduler timestep_type continuous")
        }
        conversion = try SigmaSpacingConversion(configuration: configuration, scheduler: "EulerDiscreteScheduler")
    }

    public var initNoiseSigma: Float { NoiseSchedule.initNoiseSigma(sigmas: sigmas, configuration: configuration) }

    /// Sets the step index diffusers would reach after `beginIndex` steps (img2img strength).
    public func setBeginIndex(_ beginIndex: Int) { stepIndex.begin = beginIndex }

    public func setTimesteps(_ stepCount: Int, mu: Double?) throws {
        try rejectShiftParameter(mu, scheduler: "EulerDiscreteScheduler")
        guard stepCount > 0 else { throw SchedulerError.invalidConfiguration("EulerDiscreteScheduler: \(stepCount) steps") }
        let trainingSigmas = schedule.sigmaTable(configuration: configuration)
        let (steps, levels) = try conversion.levels(
            stepCount: stepCount, trainingSigmas: trainingSigmas, trainCount: schedule.trainTimestepCount, configuration: configuration)
        let finalSigma: Float = (configuration.finalSigmasType ?? "zero") == "sigma_min" ? trainingSigmas[0] : 0
        sigmas = levels.map { Float($0) } + [finalSigma]
        timesteps = steps
        stepIndex.reset()
    }

    public func scaleModelInput(_ sample: ShapedArray, timestep: Double) throws -> ShapedArray {
        let index = try stepIndex.resolve(timestep: timestep, in: timesteps, scheduler: "EulerDiscreteScheduler")
        return NoiseSchedule.scaledModelInput(sample, sigma: sigmas[index])
    }

    public func step(modelOutput: ShapedArray, timestep: Double, sample: ShapedArray, noise: NoiseGenerator?) throws -> ShapedArray {
        try requireSameShape(modelOutput, sample, scheduler: "EulerDiscreteScheduler")
        let index = try resolveStep(timestep)
        let sigma = sigmas[index]
        let denoised = try SigmaPrediction.denoised(
            modelOutput: modelOutput, sample: sample, sigma: sigma,
            predictionType: configuration.predictionType ?? "epsilon", scheduler: "EulerDiscreteScheduler")
        let stepSize = sigmas[index + 1] - sigma
        return sample.zip(denoised) { current, clean in
            let derivative = (current - clean) / sigma
            return current + derivative * stepSize
        }
    }

    /// The schedule index of `timestep`, moving the step index past it as a step does.
    func resolveStep(_ timestep: Double) throws -> Int {
        try stepIndex.advance(past: timestep, in: timesteps, scheduler: "EulerDiscreteScheduler")
    }

    public func addNoise(to original: ShapedArray, noise: ShapedArray, timestep: Double) throws -> ShapedArray {
        try requireSameShape(original, noise, scheduler: "EulerDiscreteScheduler")
        let index = try stepIndex.noisingIndex(timestep: timestep, in: timesteps, scheduler: "EulerDiscreteScheduler")
        let sigma = sigmas[index]
        return original.zip(noise) { $0 + $1 * sigma }
    }
}

/// The clean-sample estimate x̂₀ of the sigma-parameterised (k-diffusion) schedulers.
enum SigmaPrediction {
    static func denoised(modelOutput: ShapedArray, sample: ShapedArray, sigma: Float, predictionType: String, scheduler: String) throws -> ShapedArray {
        switch predictionType {
        case "epsilon":
            return sample.zip(modelOutput) { $0 - sigma * $1 }
        case "v_prediction":
            // The sample is scaled by 1/sqrt(σ²+1) in model space; v relates to that scaled sample.
            let outputScale = -sigma / (sigma * sigma + 1).squareRoot()
            let sampleScale = sigma * sigma + 1
            return modelOutput.zip(sample) { $0 * outputScale + $1 / sampleScale }
        case "sample", "original_sample":
            return modelOutput
        default:
            throw SchedulerError.unsupported("[\(scheduler)] prediction_type \(predictionType)")
        }
    }
}
