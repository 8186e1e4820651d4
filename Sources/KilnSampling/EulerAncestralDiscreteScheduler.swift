import Foundation

/// Ancestral Euler sampling (k-diffusion's `sample_euler_ancestral`, after Karras et al.,
/// https://arxiv.org/abs/2206.00364): an Euler step down to sigma_down, then fresh noise of
/// scale sigma_up, matching diffusers' `EulerAncestralDiscreteScheduler`.
///
/// Each step draws one `randn` of the sample's shape from the generator, as diffusers does.
public final class EulerAncestralDiscreteScheduler: Scheduler {
    public let configuration: SchedulerConfiguration
    public private(set) var timesteps: [Double] = []
    public private(set) var sigmas: [Float] = []
    public let order = 1
    public let isStochastic = true
    let schedule: NoiseSchedule
    private var stepIndex = StepIndexTracker()

    public init(configuration: SchedulerConfiguration) throws {
        self.configuration = configuration
        self.schedule = try NoiseSchedule(configuration: configuration)
    }

    public var initNoiseSigma: Float { NoiseSchedule.initNoiseSigma(sigmas: sigmas, configuration: configuration) }

    public func setBeginIndex(_ beginIndex: Int) { stepIndex.begin = beginIndex }

    public func setTimesteps(_ stepCount: Int, mu: Double?) throws {
        try rejectShiftParameter(mu, scheduler: "EulerAncestralDiscreteScheduler")
        guard stepCount > 0 else { throw SchedulerError.invalidConfiguration("EulerAncestralDiscreteScheduler: \(stepCount) steps") }
        let trainingSigmas = schedule.sigmaTable(configuration: configuration)
        let spaced = try NoiseSchedule.spacedTimesteps(
            spacing: configuration.timestepSpacing ?? "linspace", stepCount: stepCount,
            trainCount: schedule.trainTimestepCount, stepsOffset: configuration.stepsOffset ?? 0)
        timesteps = spaced.map { Double(Float($0)) }
        sigmas = timesteps.map { Float(NoiseSchedule.interpolate($0, in: trainingSigmas)) } + [0]
        stepIndex.reset()
    }

    public func scaleModelInput(_ sample: ShapedArray, timestep: Double) throws -> ShapedArray {
        let index = try stepIndex.resolve(timestep: timestep, in: timesteps, scheduler: "EulerAncestralDiscreteScheduler")
        return NoiseSchedule.scaledModelInput(sample, sigma: sigmas[index])
    }

    public func step(modelOutput: ShapedArray, timestep: Double, sample: ShapedArray, noise: NoiseGenerator?) throws -> ShapedArray {
        let name = "EulerAncestralDiscreteScheduler"
        guard let noise else { throw SchedulerError.noiseGeneratorRequired(name) }
        try requireSameShape(modelOutput, sample, scheduler: name)
        let prediction = configuration.predictionType ?? "epsilon"
        if prediction == "sample" { throw SchedulerError.unsupported("[\(name)] prediction_type sample") }
        let index = try resolveStep(timestep)
        let sigma = sigmas[index]
        let denoised = try SigmaPrediction.denoised(
            modelOutput: modelOutput, sample: sample, sigma: sigma, predictionType: prediction, scheduler: name)
        let (sigmaUp, sigmaDown) = Self.ancestralSigmas(from: sigma, to: sigmas[index + 1])
        let stepSize = sigmaDown - sigma
        let fresh = noise.normal(count: sample.scalars.count)
        var result = sample.zip(denoised) { current, clean in current + (current - clean) / sigma * stepSize }
        for position in result.scalars.indices { result.scalars[position] += fresh[position] * sigmaUp }
        return result
    }

    /// The schedule index of `timestep`, moving the step index past it as a step does.
    func resolveStep(_ timestep: Double) throws -> Int {
        try stepIndex.advance(past: timestep, in: timesteps, scheduler: "EulerAncestralDiscreteScheduler")
    }

    /// The noise added (σ_up) and the level stepped to deterministically (σ_down) from σ to σ_next.
    static func ancestralSigmas(from sigma: Float, to next: Float) -> (up: Float, down: Float) {
        let up = (next * next * (sigma * sigma - next * next) / (sigma * sigma)).squareRoot()
        return (up, (next * next - up * up).squareRoot())
    }

    public func addNoise(to original: ShapedArray, noise: ShapedArray, timestep: Double) throws -> ShapedArray {
        try requireSameShape(original, noise, scheduler: "EulerAncestralDiscreteScheduler")
        let index = try stepIndex.noisingIndex(timestep: timestep, in: timesteps, scheduler: "EulerAncestralDiscreteScheduler")
        let sigma = sigmas[index]
        return original.zip(noise) { $0 + $1 * sigma }
    }
}
