import Foundation

/// Heun's second-order method on the probability-flow ODE in sigma space (Karras et al.,
/// "Elucidating the Design Space of Diffusion-Based Generative Models",
/// https://arxiv.org/abs/2206.00364, Algorithm 1), matching diffusers' `HeunDiscreteScheduler`.
///
/// Every sigma but the first and the last is listed twice, so each solver step is two model
/// calls (`order` 2): an Euler predictor, then the corrector averaging both slopes. The final
/// step down to sigma 0 is a plain Euler step. Supports `linspace`/`leading`/`trailing`
/// spacing, Karras and exponential sigmas, clipping, and epsilon/v/sample prediction.
public final class HeunDiscreteScheduler: Scheduler {
    public let configuration: SchedulerConfiguration
    public private(set) var timesteps: [Double] = []
    public private(set) var sigmas: [Float] = []
    public let order = 2
    public let isStochastic = false
    let schedule: NoiseSchedule
    private let conversion: SigmaSpacingConversion
    private let predictionType: String
    private var stepIndex = StepIndexTracker()
    /// The predictor's slope, step size and starting sample; nil while in the first-order half.
    private var predictor: (derivative: ShapedArray, stepSize: Float, sample: ShapedArray)?

    public init(configuration: SchedulerConfiguration) throws {
        self.configuration = configuration
        // Heun's own defaults differ from DDPM's, and it has no zero-SNR rescaling.
        self.schedule = try NoiseSchedule(
            configuration: configuration, defaultBetaStart: 0.00085, defaultBetaEnd: 0.012, rescalesToZeroSNR: false)
        conversion = try SigmaSpacingConversion(configuration: configuration, scheduler: "HeunDiscreteScheduler")
        predictionType = configuration.predictionType ?? "epsilon"
        guard ["epsilon", "v_prediction", "sample"].contains(predictionType) else {
            throw SchedulerError.unsupported("HeunDiscreteScheduler prediction_type \(predictionType)")
        }
    }

    public var initNoiseSigma: Float { NoiseSchedule.initNoiseSigma(sigmas: sigmas, configuration: configuration) }

    /// Starts at schedule index `beginIndex` (img2img passes `t_start * 2`).
    public func setBeginIndex(_ beginIndex: Int) { stepIndex.begin = beginIndex }

    public func setTimesteps(_ stepCount: Int, mu: Double?) throws {
        try rejectShiftParameter(mu, scheduler: "HeunDiscreteScheduler")
        guard stepCount > 0 else { throw SchedulerError.invalidConfiguration("HeunDiscreteScheduler: \(stepCount) steps") }
        let trainingSigmas = schedule.trainingSigmas
        let (steps, levels) = try conversion.levels(
            stepCount: stepCount, trainingSigmas: trainingSigmas, trainCount: schedule.trainTimestepCount, configuration: configuration)
        let levels32 = levels.map { Float($0) } + [0]
        // Interleave: s0, s1, s1, ..., s(n-1), s(n-1), 0 and t0, t1, t1, ..., t(n-1), t(n-1).
        sigmas = [levels32[0]] + levels32.dropFirst().dropLast().flatMap { [$0, $0] } + [0]
        timesteps = [steps[0]] + steps.dropFirst().flatMap { [$0, $0] }
        predictor = nil
        stepIndex.reset()
    }

    public func scaleModelInput(_ sample: ShapedArray, timestep: Double) throws -> ShapedArray {
        let index = try stepIndex.resolve(timestep: timestep, in: timesteps, scheduler: "HeunDiscreteScheduler")
        return NoiseSchedule.scaledModelInput(sample, sigma: sigmas[index])
    }

    public func step(modelOutput: ShapedArray, timestep: Double, sample: ShapedArray, noise: NoiseGenerator?) throws -> ShapedArray {
        let name = "HeunDiscreteScheduler"
        guard !timesteps.isEmpty else { throw SchedulerError.timestepsNotSet(name) }
        try requireSameShape(modelOutput, sample, scheduler: name)
        let index = try stepIndex.resolve(timestep: timestep, in: timesteps, scheduler: name)
        // The predictor goes from sigmas[i] to sigmas[i + 1]; the corrector, called at the
        // repeated entry, evaluates at sigmas[i] = the predictor's target.
        let sigma: Float
        let sigmaNext: Float
        if predictor == nil {
            sigma = sigmas[index]
            sigmaNext = sigmas[index + 1]
        } else {
            sigma = sigmas[index - 1]
            sigmaNext = sigmas[index]
        }
        let sigmaInput = predictor == nil ? sigma : sigmaNext
        var denoised = try SigmaPrediction.denoised(
            modelOutput: modelOutput, sample: sample, sigma: sigmaInput, predictionType: predictionType, scheduler: name)
        if configuration.clipSample ?? false {
            let range = Float(configuration.clipSampleRange ?? 1)
            denoised = denoised.map { min(max($0, -range), range) }
        }
        let result: ShapedArray
        if let (firstDerivative, stepSize, start) = predictor {
            let derivative = sample.zip(denoised) { ($0 - $1) / sigmaNext }.zip(firstDerivative) { ($1 + $0) / 2 }
            result = start.zip(derivative) { $0 + $1 * stepSize }
            predictor = nil
        } else {
            let derivative = sample.zip(denoised) { ($0 - $1) / sigma }
            let stepSize = sigmaNext - sigma
            predictor = (derivative, stepSize, sample)
            result = sample.zip(derivative) { $0 + $1 * stepSize }
        }
        stepIndex.current = index + 1
        return result
    }

    public func addNoise(to original: ShapedArray, noise: ShapedArray, timestep: Double) throws -> ShapedArray {
        try requireSameShape(original, noise, scheduler: "HeunDiscreteScheduler")
        let index = try stepIndex.noisingIndex(timestep: timestep, in: timesteps, scheduler: "HeunDiscreteScheduler")
        let sigma = sigmas[index]
        return original.zip(noise) { $0 + $1 * sigma }
    }
}
