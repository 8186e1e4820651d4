import Foundation

/// Latent Consistency Model multistep sampling (Luo et al., "Latent Consistency Models:
/// Synthesizing High-Resolution Images with Few-Step Inference", https://arxiv.org/abs/2310.04378,
/// Algorithm 3), matching diffusers' `LCMScheduler`.
///
/// Timesteps are a subset of the `original_inference_steps`-long distillation schedule. Each
/// step maps the sample to the consistency function's estimate c_skip·x + c_out·x̂₀ and, on every
/// step but the last, re-noises it to the next timestep with one `randn` of the sample's shape
/// from the generator, as diffusers draws it.
public final class LCMScheduler: Scheduler {
    public let configuration: SchedulerConfiguration
    public private(set) var timesteps: [Double] = []
    public var sigmas: [Float] { [] }
    public let initNoiseSigma: Float = 1
    public let order = 1
    public let isStochastic = true
    let schedule: NoiseSchedule
    private let finalAlphaCumulativeProduct: Float
    private let predictionType: String
    private var stepIndex = StepIndexTracker()

    public init(configuration: SchedulerConfiguration) throws {
        self.configuration = configuration
        self.schedule = try NoiseSchedule(
            configuration: configuration, defaultBetaStart: 0.00085, defaultBetaEnd: 0.012, defaultSchedule: "scaled_linear")
        if configuration.thresholding ?? false { throw SchedulerError.unsupported("LCMScheduler thresholding") }
        finalAlphaCumulativeProduct = (configuration.setAlphaToOne ?? true) ? 1 : schedule.alphasCumulativeProduct[0]
        predictionType = configuration.predictionType ?? "epsilon"
        guard ["epsilon", "sample", "v_prediction"].contains(predictionType) else {
            throw SchedulerError.unsupported("LCMScheduler prediction_type \(predictionType)")
        }
    }

    /// Starts at schedule index `beginIndex` (img2img passes `t_start`).
    public func setBeginIndex(_ beginIndex: Int) { stepIndex.begin = beginIndex }

    /// `timestep_spacing` and `steps_offset` play no part: the schedule is always drawn from the
    /// distillation timesteps k·i - 1 with k = T // original_inference_steps.
    public func setTimesteps(_ stepCount: Int, mu: Double?) throws {
        let name = "LCMScheduler"
        try rejectShiftParameter(mu, scheduler: name)
        let trainCount = schedule.trainTimestepCount
        let originalSteps = configuration.originalInferenceSteps ?? 50
        guard originalSteps > 0, originalSteps <= trainCount else {
            throw SchedulerError.invalidConfiguration("\(name): original_inference_steps \(originalSteps) for \(trainCount) training timesteps")
        }
        guard stepCount > 0, stepCount <= trainCount else {
            throw SchedulerError.invalidConfiguration("\(name): \(stepCount) steps for \(trainCount) training timesteps")
        }
        guard stepCount <= originalSteps else {
            throw SchedulerError.invalidConfiguration(
                "\(name): \(stepCount) steps exceed original_inference_steps \(originalSteps), the schedule they are drawn from")
        }
        let stride = trainCount / originalSteps
        let distilled = (1...originalSteps).reversed().map { $0 * stride - 1 }
        // Evenly spaced picks floor(i · L / n), numpy's linspace without the end point.
        let spacing = Double(distilled.count) / Double(stepCount)
        timesteps = (0..<stepCount).map { Double(distilled[Int((Double($0) * spacing).rounded(.down))]) }
        stepIndex.reset()
    }

    public func scaleModelInput(_ sample: ShapedArray, timestep: Double) -> ShapedArray { sample }

    public func step(modelOutput: ShapedArray, timestep: Double, sample: ShapedArray, noise: NoiseGenerator?) throws -> ShapedArray {
        let name = "LCMScheduler"
        guard !timesteps.isEmpty else { throw SchedulerError.timestepsNotSet(name) }
        try requireSameShape(modelOutput, sample, scheduler: name)
        let index = try stepIndex.resolve(timestep: timestep, in: timesteps, scheduler: name)
        let current = try schedule.trainingIndex(timestep, scheduler: name)
        let previous = index + 1 < timesteps.count ? Int(timesteps[index + 1]) : current
        let alphaProduct = schedule.alphasCumulativeProduct[current]
        let alphaProductPrevious = previous >= 0 ? schedule.alphasCumulativeProduct[previous] : finalAlphaCumulativeProduct
        let betaProductPrevious = 1 - alphaProductPrevious

        // The boundary-condition scalings with sigma_data = 0.5, in float32 like diffusers'
        // tensor timestep: c_skip → 1 and c_out → 0 as t → 0.
        let scaledTimestep = Float(current) * Float(configuration.timestepScaling ?? 10)
        let dataVariance: Float = 0.25
        let skipScale = dataVariance / (scaledTimestep * scaledTimestep + dataVariance)
        let outputScale = scaledTimestep / (scaledTimestep * scaledTimestep + dataVariance).squareRoot()

        let predictedOriginal = NoiseSchedule.predictedOriginal(
            sample: sample, modelOutput: modelOutput, alphaProduct: alphaProduct, predictionType: predictionType,
            clip: NoiseSchedule.clipRange(configuration, clipsByDefault: false))
        let denoised = predictedOriginal.zip(sample) { outputScale * $0 + skipScale * $1 }
        guard index != timesteps.count - 1 else {
            stepIndex.current = index + 1
            return denoised
        }

        guard let noise else { throw SchedulerError.noiseGeneratorRequired(name) }
        stepIndex.current = index + 1
        let fresh = noise.normal(count: denoised.scalars.count)
        let signal = alphaProductPrevious.squareRoot()
        let noiseScale = betaProductPrevious.squareRoot()
        var result = denoised
        for position in result.scalars.indices {
            result.scalars[position] = signal * denoised.scalars[position] + noiseScale * fresh[position]
        }
        return result
    }

    public func addNoise(to original: ShapedArray, noise: ShapedArray, timestep: Double) throws -> ShapedArray {
        try DiscreteNoising.addNoise(to: original, noise: noise, timestep: timestep, schedule: schedule, scheduler: "LCMScheduler")
    }
}
