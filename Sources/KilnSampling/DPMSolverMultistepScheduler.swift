import Foundation

/// DPM-Solver++ multistep (Lu et al., "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion
/// Probabilistic Models", https://arxiv.org/abs/2211.01095), first and second order with the
/// midpoint or Heun second-order update, matching diffusers' `DPMSolverMultistepScheduler` with
/// `algorithm_type` `dpmsolver++` ("DPM++ 2M", and "DPM++ 2M Karras" with Karras sigmas; exponential
/// sigmas too).
public final class DPMSolverMultistepScheduler: Scheduler {
    public let configuration: SchedulerConfiguration
    public private(set) var timesteps: [Double] = []
    public private(set) var sigmas: [Float] = []
    public let initNoiseSigma: Float = 1
    public let order = 1
    public let isStochastic = false
    let schedule: NoiseSchedule
    private let solverOrder: Int
    private let conversion: SigmaSpacingConversion
    private var stepIndex = StepIndexTracker()
    private var previousOutputs: [ShapedArray] = []
    private var lowerOrderCount = 0

    public init(configuration: SchedulerConfiguration) throws {
        self.configuration = configuration
        self.schedule = try NoiseSchedule(configuration: configuration)
        solverOrder = configuration.solverOrder ?? 2
        let algorithm = configuration.algorithmType ?? "dpmsolver++"
        guard algorithm == "dpmsolver++" || algorithm == "deis" else {
            throw SchedulerError.unsupported("DPMSolverMultistepScheduler algorithm_type \(algorithm)")
        }
        guard solverOrder == 1 || solverOrder == 2 else {
            throw SchedulerError.unsupported("DPMSolverMultistepScheduler solver_order \(solverOrder)")
        }
        if configuration.thresholding ?? false { throw SchedulerError.unsupported("DPMSolverMultistepScheduler thresholding") }
        conversion = try SigmaSpacingConversion(configuration: configuration, scheduler: "DPMSolverMultistepScheduler")
        if configuration.useLuLambdas ?? false { throw SchedulerError.unsupported("DPMSolverMultistepScheduler use_lu_lambdas") }
        if configuration.useFlowSigmas ?? false { throw SchedulerError.unsupported("DPMSolverMultistepScheduler use_flow_sigmas") }
        // A finite floor shortens the schedule; diffusers' default is -inf (no clipping).
        if let floor = configuration.lambdaMinClipped, floor.isFinite {
            throw SchedulerError.unsupported("DPMSolverMultistepScheduler lambda_min_clipped \(floor)")
        }
        if let variance = configuration.varianceType, variance == "learned" || variance == "learned_range" {
            throw SchedulerError.unsupported("DPMSolverMultistepScheduler variance_type \(variance)")
        }
    }

    public func setBeginIndex(_ beginIndex: Int) { stepIndex.begin = beginIndex }

    public func setTimesteps(_ stepCount: Int, mu: Double?) throws {
        try rejectShiftParameter(mu, scheduler: "DPMSolverMultistepScheduler")
        guard stepCount > 0 else { throw SchedulerError.invalidConfiguration("DPMSolverMultistepScheduler: \(stepCount) steps") }
        let trainCount = schedule.trainTimestepCount
        let offset = configuration.stepsOffset ?? 0
        var steps: [Double]
        switch configuration.timestepSpacing ?? "linspace" {
        case "linspace":
            // n + 1 points, the last (timestep 0) dropped.
            steps = NoiseSchedule.linspace(from: 0, to: Double(trainCount - 1), count: stepCount + 1)
                .map(NoiseSchedule.roundHalfEven).reversed().dropLast()
        case "leading":
            let ratio = trainCount / (stepCount + 1)
            steps = (1...stepCount).reversed().map { Double($0 * ratio + offset) }
        case "trailing":
            steps = NoiseSchedule.arangeDescending(from: Double(trainCount), stepSize: Double(trainCount) / Double(stepCount))
                .map { NoiseSchedule.roundHalfEven($0) - 1 }
        case let other:
            throw SchedulerError.unsupported("timestep_spacing \(other)")
        }
        // Under zero-terminal-SNR rescaling the last sigma is pinned finite, as diffusers pins ᾱ_T.
        let trainingSigmas = schedule.sigmaTable(configuration: configuration)
        var levels: [Double]
        // The conversions start from the whole training table, largest sigma first.
        let descending = trainingSigmas.reversed().map(Double.init)
        if let converted = conversion.converted(descending, count: stepCount, configuration: configuration) {
            let logSigmas = trainingSigmas.map { Foundation.log($0) }
            levels = converted
            steps = levels.map { NoiseSchedule.timestep(forSigma: $0, logSigmas: logSigmas) }
            // Only Karras timesteps are rounded (to the nearest, before the int64 cast below).
            if conversion == .karras && (configuration.betaSchedule ?? "linear") != "squaredcos_cap_v2" {
                steps = steps.map(NoiseSchedule.roundHalfEven)
            }
        } else {
            levels = steps.map { NoiseSchedule.interpolate($0, in: trainingSigmas) }
        }
        let finalSigma: Float = (configuration.finalSigmasType ?? "zero") == "sigma_min" ? trainingSigmas[0] : 0
        sigmas = levels.map { Float($0) } + [finalSigma]
        // diffusers stores these timesteps as int64, truncating any fraction.
        timesteps = steps.map { $0.rounded(.towardZero) }
        previousOutputs = []
        lowerOrderCount = 0
        stepIndex.reset()
    }

    public func scaleModelInput(_ sample: ShapedArray, timestep: Double) -> ShapedArray { sample }

    /// alpha_t and sigma_t of the VP process for a k-diffusion sigma.
    private func alphaSigma(_ sigma: Float) -> (alpha: Float, sigma: Float) {
        let alpha = 1 / (sigma * sigma + 1).squareRoot()
        return (alpha, sigma * alpha)
    }

    private func lambda(_ pair: (alpha: Float, sigma: Float)) -> Float {
        Foundation.log(pair.alpha) - Foundation.log(pair.sigma)
    }

    public func step(modelOutput: ShapedArray, timestep: Double, sample: ShapedArray, noise: NoiseGenerator?) throws -> ShapedArray {
        let name = "DPMSolverMultistepScheduler"
        guard !timesteps.isEmpty else { throw SchedulerError.timestepsNotSet(name) }
        try requireSameShape(modelOutput, sample, scheduler: name)
        let index = try stepIndex.resolve(timestep: timestep, in: timesteps, scheduler: name)
        let count = timesteps.count
        let lowerOrderFinal = configuration.lowerOrderFinal ?? true
        let finalIsFirstOrder = index == count - 1
            && ((configuration.eulerAtFinal ?? false) || (lowerOrderFinal && count < 15)
                || (configuration.finalSigmasType ?? "zero") == "zero")

        let current = alphaSigma(sigmas[index])
        let denoised: ShapedArray
        switch configuration.predictionType ?? "epsilon" {
        case "epsilon": denoised = sample.zip(modelOutput) { ($0 - current.sigma * $1) / current.alpha }
        case "sample": denoised = modelOutput
        case "v_prediction": denoised = sample.zip(modelOutput) { current.alpha * $0 - current.sigma * $1 }
        case let other: throw SchedulerError.unsupported("[\(name)] prediction_type \(other)")
        }
        previousOutputs.append(denoised)
        if previousOutputs.count > solverOrder { previousOutputs.removeFirst() }

        let target = alphaSigma(sigmas[index + 1])
        let h = lambda(target) - lambda(current)
        let sampleScale = target.sigma / current.sigma
        let outputScale = target.alpha * (Foundation.exp(-h) - 1)
        let result: ShapedArray
        if solverOrder == 1 || lowerOrderCount < 1 || finalIsFirstOrder {
            result = sample.zip(denoised) { sampleScale * $0 - outputScale * $1 }
        } else {
            let earlier = alphaSigma(sigmas[index - 1])
            let hPrevious = lambda(current) - lambda(earlier)
            let ratio = hPrevious / h
            let inverseRatio = 1 / ratio
            let older = previousOutputs[previousOutputs.count - 2]
            let difference = denoised.zip(older) { inverseRatio * ($0 - $1) }
            let correctionScale: Float
            let correctionSign: Float
            if (configuration.solverType ?? "midpoint") == "heun" {
                correctionScale = target.alpha * ((Foundation.exp(-h) - 1) / h + 1)
                correctionSign = 1
            } else {
                correctionScale = 0.5 * outputScale
                correctionSign = -1
            }
            var combined = sample.zip(denoised) { sampleScale * $0 - outputScale * $1 }
            for position in combined.scalars.indices {
                combined.scalars[position] += correctionSign * (correctionScale * difference.scalars[position])
            }
            result = combined
        }
        if lowerOrderCount < solverOrder { lowerOrderCount += 1 }
        stepIndex.current = index + 1
        return result
    }

    public func addNoise(to original: ShapedArray, noise: ShapedArray, timestep: Double) throws -> ShapedArray {
        try requireSameShape(original, noise, scheduler: "DPMSolverMultistepScheduler")
        let index = try stepIndex.noisingIndex(timestep: timestep, in: timesteps, scheduler: "DPMSolverMultistepScheduler")
        let pair = alphaSigma(sigmas[index])
        return original.zip(noise) { pair.alpha * $0 + pair.sigma * $1 }
    }
}
