import Foundation

/// Denoising Diffusion Implicit Models (Song et al., https://arxiv.org/abs/2010.02502), the
/// deterministic eta = 0 sampler, matching diffusers' `DDIMScheduler`.
public final class DDIMScheduler: Scheduler {
    public let configuration: SchedulerConfiguration
    public private(set) var timesteps: [Double] = []
    public var sigmas: [Float] { [] }
    public let initNoiseSigma: Float = 1
    public let order = 1
    public let isStochastic = false
    let schedule: NoiseSchedule
    private let finalAlphaCumulativeProduct: Float
    private var stepCount = 0

    public init(configuration: SchedulerConfiguration) throws {
        self.configuration = configuration
        self.schedule = try NoiseSchedule(configuration: configuration)
        if configuration.thresholding ?? false { throw SchedulerError.unsupported("DDIMScheduler thresholding") }
        finalAlphaCumulativeProduct = (configuration.setAlphaToOne ?? true) ? 1 : schedule.alphasCumulativeProduct[0]
    }

    public func setTimesteps(_ stepCount: Int, mu: Double?) throws {
        try rejectShiftParameter(mu, scheduler: "DDIMScheduler")
        let trainCount = schedule.trainTimestepCount
        guard stepCount > 0, stepCount <= trainCount else {
            throw SchedulerError.invalidConfiguration("DDIMScheduler: \(stepCount) steps for \(trainCount) training timesteps")
        }
        let spacing = configuration.timestepSpacing ?? "leading"
        let spaced = try NoiseSchedule.spacedTimesteps(
            spacing: spacing, stepCount: stepCount, trainCount: trainCount, stepsOffset: configuration.stepsOffset ?? 0)
        try NoiseSchedule.requireTrainedRange(spaced, trainCount: trainCount, stepsOffset: configuration.stepsOffset ?? 0)
        timesteps = spacing == "linspace" ? spaced.map(NoiseSchedule.roundHalfEven) : spaced
        self.stepCount = stepCount
    }

    /// Does nothing: diffusers' DDIM has no begin index and steps by timestep value, so starting
    /// mid-schedule needs only the shortened timestep list.
    public func setBeginIndex(_ index: Int) {}

    public func scaleModelInput(_ sample: ShapedArray, timestep: Double) -> ShapedArray { sample }

    public func step(modelOutput: ShapedArray, timestep: Double, sample: ShapedArray, noise: NoiseGenerator?) throws -> ShapedArray {
        try requireSameShape(modelOutput, sample, scheduler: "DDIMScheduler")
        let (alphaProduct, alphaProductPrevious) = try alphaProducts(timestep)
        let betaProduct = 1 - alphaProduct
        let alphaRoot = alphaProduct.squareRoot()
        let betaRoot = betaProduct.squareRoot()

        let predictionType = configuration.predictionType ?? "epsilon"
        // ε̂ from the unclipped prediction, as diffusers computes it.
        let predictedEpsilon: ShapedArray
        switch predictionType {
        case "epsilon": predictedEpsilon = modelOutput
        case "sample": predictedEpsilon = sample.zip(modelOutput) { ($0 - alphaRoot * $1) / betaRoot }
        case "v_prediction": predictedEpsilon = modelOutput.zip(sample) { alphaRoot * $0 + betaRoot * $1 }
        case let other: throw SchedulerError.unsupported("DDIMScheduler prediction_type \(other)")
        }
        let predictedOriginal = NoiseSchedule.predictedOriginal(
            sample: sample, modelOutput: modelOutput, alphaProduct: alphaProduct, predictionType: predictionType,
            clip: NoiseSchedule.clipRange(configuration, clipsByDefault: true))
        let directionScale = (1 - alphaProductPrevious).squareRoot()
        let previousRoot = alphaProductPrevious.squareRoot()
        return predictedOriginal.zip(predictedEpsilon) { previousRoot * $0 + directionScale * $1 }
    }

    /// ᾱ at `timestep` and at the timestep the step lands on.
    func alphaProducts(_ timestep: Double) throws -> (current: Float, previous: Float) {
        guard stepCount > 0 else { throw SchedulerError.timestepsNotSet("DDIMScheduler") }
        let current = try schedule.trainingIndex(timestep, scheduler: "DDIMScheduler")
        // diffusers steps back by T // n whatever the spacing, not to the next listed timestep.
        let previous = current - schedule.trainTimestepCount / stepCount
        return (schedule.alphasCumulativeProduct[current],
                previous >= 0 ? schedule.alphasCumulativeProduct[previous] : finalAlphaCumulativeProduct)
    }

    public func addNoise(to original: ShapedArray, noise: ShapedArray, timestep: Double) throws -> ShapedArray {
        try DiscreteNoising.addNoise(to: original, noise: noise, timestep: timestep, schedule: schedule, scheduler: "DDIMScheduler")
    }
}

/// Forward noising x_t = sqrt(ᾱ_t) x₀ + sqrt(1 - ᾱ_t) ε for the discrete-timestep schedulers.
enum DiscreteNoising {
    static func addNoise(
        to original: ShapedArray, noise: ShapedArray, timestep: Double, schedule: NoiseSchedule, scheduler: String
    ) throws -> ShapedArray {
        try requireSameShape(original, noise, scheduler: scheduler)
        let alphaProduct = schedule.alphasCumulativeProduct[try schedule.trainingIndex(timestep, scheduler: scheduler)]
        let signal = alphaProduct.squareRoot()
        let noiseScale = (1 - alphaProduct).squareRoot()
        return original.zip(noise) { signal * $0 + noiseScale * $1 }
    }
}
