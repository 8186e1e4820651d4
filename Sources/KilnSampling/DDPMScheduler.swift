import Foundation

/// Ancestral sampling of Denoising Diffusion Probabilistic Models (Ho et al.,
/// https://arxiv.org/abs/2006.11239, Algorithm 2), matching diffusers' `DDPMScheduler`.
///
/// Each step moves to the posterior mean of x_{t-1} given x_t and the predicted x₀ (eq. 7), then,
/// for t > 0, adds fresh noise: one `randn` of the sample's shape drawn from the generator, as
/// diffusers draws it. Variance types `fixed_small` (β̃_t, the default), `fixed_small_log`,
/// `fixed_large` (β_t), and the learned ones of Nichol & Dhariwal ("Improved Denoising Diffusion
/// Probabilistic Models", https://arxiv.org/abs/2102.09672), where the model output carries the
/// variance in its second half of channels: `learned` (the variance itself) and `learned_range`
/// (an interpolation between log β̃_t and log β_t).
public final class DDPMScheduler: Scheduler {
    public let configuration: SchedulerConfiguration
    public private(set) var timesteps: [Double] = []
    public var sigmas: [Float] { [] }
    public let initNoiseSigma: Float = 1
    public let order = 1
    public let isStochastic = true
    let schedule: NoiseSchedule
    private let varianceType: String
    private let predictionType: String

    public init(configuration: SchedulerConfiguration) throws {
        self.configuration = configuration
        self.schedule = try NoiseSchedule(configuration: configuration)
        if configuration.thresholding ?? false { throw SchedulerError.unsupported("DDPMScheduler thresholding") }
        varianceType = configuration.varianceType ?? "fixed_small"
        switch varianceType {
        case "fixed_small", "fixed_small_log", "fixed_large", "learned", "learned_range": break
        case "fixed_large_log":
            // diffusers takes the square root of log β_t < 0 there, so every noisy step is NaN.
            throw SchedulerError.unsupported("DDPMScheduler variance_type fixed_large_log (NaN in diffusers)")
        case let other:
            throw SchedulerError.unsupported("DDPMScheduler variance_type \(other)")
        }
        predictionType = configuration.predictionType ?? "epsilon"
        guard ["epsilon", "sample", "v_prediction"].contains(predictionType) else {
            throw SchedulerError.unsupported("DDPMScheduler prediction_type \(predictionType)")
        }
    }

    public func setTimesteps(_ stepCount: Int, mu: Double?) throws {
        try rejectShiftParameter(mu, scheduler: "DDPMScheduler")
        let trainCount = schedule.trainTimestepCount
        guard stepCount > 0, stepCount <= trainCount else {
            throw SchedulerError.invalidConfiguration("DDPMScheduler: \(stepCount) steps for \(trainCount) training timesteps")
        }
        let spacing = configuration.timestepSpacing ?? "leading"
        let spaced = try NoiseSchedule.spacedTimesteps(
            spacing: spacing, stepCount: stepCount, trainCount: trainCount, stepsOffset: configuration.stepsOffset ?? 0)
        try NoiseSchedule.requireTrainedRange(spaced, trainCount: trainCount, stepsOffset: configuration.stepsOffset ?? 0)
        timesteps = spacing == "linspace" ? spaced.map(NoiseSchedule.roundHalfEven) : spaced
    }

    /// Does nothing: diffusers' DDPM has no begin index; it finds each timestep in the schedule.
    public func setBeginIndex(_ index: Int) {}

    public func scaleModelInput(_ sample: ShapedArray, timestep: Double) -> ShapedArray { sample }

    public func step(modelOutput: ShapedArray, timestep: Double, sample: ShapedArray, noise: NoiseGenerator?) throws -> ShapedArray {
        let name = "DDPMScheduler"
        guard !timesteps.isEmpty else { throw SchedulerError.timestepsNotSet(name) }
        let current = try schedule.trainingIndex(timestep, scheduler: name)
        // The previous timestep is the next one listed (diffusers' `previous_timestep`), -1 at the end.
        guard let position = timesteps.firstIndex(of: timestep) else { throw SchedulerError.timestepNotInSchedule(name, timestep) }
        let previous = position + 1 < timesteps.count ? Int(timesteps[position + 1]) : -1

        let (output, predictedVariance) = try splitVariance(modelOutput, sample: sample)
        try requireSameShape(output, sample, scheduler: name)

        let alphaProduct = schedule.alphasCumulativeProduct[current]
        let alphaProductPrevious: Float = previous >= 0 ? schedule.alphasCumulativeProduct[previous] : 1
        let betaProduct = 1 - alphaProduct
        let betaProductPrevious = 1 - alphaProductPrevious
        let currentAlpha = alphaProduct / alphaProductPrevious
        let currentBeta = 1 - currentAlpha

        let predictedOriginal = NoiseSchedule.predictedOriginal(
            sample: sample, modelOutput: output, alphaProduct: alphaProduct, predictionType: predictionType,
            clip: NoiseSchedule.clipRange(configuration, clipsByDefault: true))

        // The posterior mean μ̃_t(x_t, x₀) of eq. 7.
        let originalCoefficient = (alphaProductPrevious.squareRoot() * currentBeta) / betaProduct
        let sampleCoefficient = currentAlpha.squareRoot() * betaProductPrevious / betaProduct
        var result = predictedOriginal.zip(sample) { originalCoefficient * $0 + sampleCoefficient * $1 }
        guard current > 0 else { return result }

        guard let noise else { throw SchedulerError.noiseGeneratorRequired(name) }
        let fresh = noise.normal(count: output.scalars.count)
        // β̃_t, floored as diffusers floors it so the logarithms stay finite.
        let posteriorVariance = max((1 - alphaProductPrevious) / (1 - alphaProduct) * currentBeta, 1e-20)
        switch varianceType {
        case "fixed_small":
            let scale = posteriorVariance.squareRoot()
            for index in result.scalars.indices { result.scalars[index] += scale * fresh[index] }
        case "fixed_small_log":
            let scale = Foundation.exp(0.5 * Foundation.log(posteriorVariance))
            for index in result.scalars.indices { result.scalars[index] += scale * fresh[index] }
        case "fixed_large":
            let scale = currentBeta.squareRoot()
            for index in result.scalars.indices { result.scalars[index] += scale * fresh[index] }
        case "learned":
            guard let predictedVariance else { throw learnedVarianceMissing(sample: sample, output: modelOutput) }
            for index in result.scalars.indices {
                result.scalars[index] += predictedVariance.scalars[index].squareRoot() * fresh[index]
            }
        default:  // learned_range
            guard let predictedVariance else { throw learnedVarianceMissing(sample: sample, output: modelOutput) }
            let minimumLog = Foundation.log(posteriorVariance)
            let maximumLog = Foundation.log(currentBeta)
            for index in result.scalars.indices {
                let fraction = (predictedVariance.scalars[index] + 1) / 2
                let logVariance = fraction * maximumLog + (1 - fraction) * minimumLog
                result.scalars[index] += Foundation.exp(0.5 * logVariance) * fresh[index]
            }
        }
        return result
    }

    public func addNoise(to original: ShapedArray, noise: ShapedArray, timestep: Double) throws -> ShapedArray {
        try DiscreteNoising.addNoise(to: original, noise: noise, timestep: timestep, schedule: schedule, scheduler: "DDPMScheduler")
    }

    /// For the learned variance types, a model output with twice the sample's channels is the
    /// prediction `[B, C, ...]` followed by the variance `[B, C, ...]` on the channel axis.
    private func splitVariance(_ modelOutput: ShapedArray, sample: ShapedArray) throws -> (ShapedArray, ShapedArray?) {
        guard varianceType == "learned" || varianceType == "learned_range",
              modelOutput.shape.count >= 2, sample.shape.count == modelOutput.shape.count,
              modelOutput.shape[1] == 2 * sample.shape[1]
        else { return (modelOutput, nil) }
        let batch = modelOutput.shape[0]
        let half = modelOutput.scalars.count / (2 * max(batch, 1))
        var prediction = [Float](), variance = [Float]()
        prediction.reserveCapacity(batch * half)
        variance.reserveCapacity(batch * half)
        for item in 0..<batch {
            let start = item * 2 * half
            prediction += modelOutput.scalars[start..<(start + half)]
            variance += modelOutput.scalars[(start + half)..<(start + 2 * half)]
        }
        var shape = modelOutput.shape
        shape[1] /= 2
        return (ShapedArray(shape: shape, scalars: prediction), ShapedArray(shape: shape, scalars: variance))
    }

    private func learnedVarianceMissing(sample: ShapedArray, output: ShapedArray) -> SchedulerError {
        .invalidConfiguration(
            "DDPMScheduler variance_type \(varianceType) needs a model output with twice the sample's channels "
                + "(got \(output.shape) for sample \(sample.shape))")
    }
}
