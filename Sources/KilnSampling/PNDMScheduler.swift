import Foundation

/// Pseudo Numerical methods for Diffusion Models (Liu et al., https://arxiv.org/abs/2202.09778):
/// a few pseudo Runge-Kutta (PRK) warm-up steps, then pseudo linear multistep (PLMS) steps that
/// combine up to four earlier noise predictions, matching diffusers' `PNDMScheduler`.
///
/// With `skip_prk_steps` (Stable Diffusion's configs) the warm-up is replaced by diffusers' PLMS
/// start: the first timestep is evaluated twice, the second time averaging both predictions.
/// The step history is kept by call count, not by timestep, exactly as diffusers keeps it.
public final class PNDMScheduler: Scheduler {
    public let configuration: SchedulerConfiguration
    public private(set) var timesteps: [Double] = []
    public var sigmas: [Float] { [] }
    public let initNoiseSigma: Float = 1
    public let order = 1
    public let isStochastic = false
    let schedule: NoiseSchedule
    private let finalAlphaCumulativeProduct: Float
    private let skipsRungeKutta: Bool
    private let predictionType: String
    private var stepCount = 0
    private var rungeKuttaTimesteps: [Int] = []
    /// Calls to `step` since `setTimesteps`.
    private var counter = 0
    /// The noise predictions the multistep formulas combine, oldest first (at most four kept).
    private var history: [ShapedArray] = []
    /// The Runge-Kutta weighted sum of the predictions so far in the current four-call group.
    private var rungeKuttaSum: ShapedArray?
    /// The sample a Runge-Kutta group (or the first PLMS pair) starts from.
    private var startSample: ShapedArray?

    public init(configuration: SchedulerConfiguration) throws {
        self.configuration = configuration
        // PNDM has no `rescale_betas_zero_snr`: from_config drops the key.
        self.schedule = try NoiseSchedule(configuration: configuration, rescalesToZeroSNR: false)
        finalAlphaCumulativeProduct = (configuration.setAlphaToOne ?? false) ? 1 : schedule.alphasCumulativeProduct[0]
        skipsRungeKutta = configuration.skipPrkSteps ?? false
        predictionType = configuration.predictionType ?? "epsilon"
        guard predictionType == "epsilon" || predictionType == "v_prediction" else {
            throw SchedulerError.unsupported("PNDMScheduler prediction_type \(predictionType)")
        }
    }

    public func setTimesteps(_ stepCount: Int, mu: Double?) throws {
        let name = "PNDMScheduler"
        try rejectShiftParameter(mu, scheduler: name)
        let trainCount = schedule.trainTimestepCount
        guard stepCount > 0, stepCount <= trainCount else {
            throw SchedulerError.invalidConfiguration("\(name): \(stepCount) steps for \(trainCount) training timesteps")
        }
        let spacing = configuration.timestepSpacing ?? "leading"
        let descending = try NoiseSchedule.spacedTimesteps(
            spacing: spacing, stepCount: stepCount, trainCount: trainCount, stepsOffset: configuration.stepsOffset ?? 0)
        try NoiseSchedule.requireTrainedRange(descending, trainCount: trainCount, stepsOffset: configuration.stepsOffset ?? 0)
        // diffusers builds the PNDM lists from the ascending integer timesteps.
        let ascending = descending.reversed().map { Int(spacing == "linspace" ? NoiseSchedule.roundHalfEven($0) : $0) }
        let multistep: [Int]
        if skipsRungeKutta {
            // All but the last, the second-to-last again, then the last; largest first.
            rungeKuttaTimesteps = []
            multistep = (Array(ascending.dropLast()) + Array(ascending.dropLast().suffix(1)) + Array(ascending.suffix(1))).reversed()
        } else {
            // The four largest timesteps, each followed by its half-step midpoint, in the
            // 12-call pattern t, t-h, t-h, t-2h per Runge-Kutta step, largest first.
            guard ascending.count >= 4 else {
                throw SchedulerError.invalidConfiguration("\(name): Runge-Kutta warm-up needs at least 4 steps (got \(stepCount)); set skip_prk_steps")
            }
            let halfStep = trainCount / stepCount / 2
            let paired = ascending.suffix(4).flatMap { [$0, $0 + halfStep] }
            let doubled = paired.dropLast().flatMap { [$0, $0] }
            rungeKuttaTimesteps = Array(doubled.dropFirst().dropLast().reversed())
            multistep = ascending.dropLast(3).reversed()
        }
        timesteps = (rungeKuttaTimesteps + multistep).map(Double.init)
        self.stepCount = stepCount
        counter = 0
        history = []
        rungeKuttaSum = nil
        startSample = nil
    }

    /// Does nothing: diffusers' PNDM has no begin index; a shortened schedule starts its step
    /// history from the first call, as diffusers' img2img does.
    public func setBeginIndex(_ index: Int) {}

    public func scaleModelInput(_ sample: ShapedArray, timestep: Double) -> ShapedArray { sample }

    public func step(modelOutput: ShapedArray, timestep: Double, sample: ShapedArray, noise: NoiseGenerator?) throws -> ShapedArray {
        guard stepCount > 0 else { throw SchedulerError.timestepsNotSet("PNDMScheduler") }
        try requireSameShape(modelOutput, sample, scheduler: "PNDMScheduler")
        if counter < rungeKuttaTimesteps.count && !skipsRungeKutta {
            return try rungeKuttaStep(modelOutput: modelOutput, timestep: Int(timestep), sample: sample)
        }
        return try linearMultistepStep(modelOutput: modelOutput, timestep: Int(timestep), sample: sample)
    }

    /// One of the four calls of a pseudo Runge-Kutta step (weights 1/6, 1/3, 1/3, 1/6).
    private func rungeKuttaStep(modelOutput: ShapedArray, timestep: Int, sample: ShapedArray) throws -> ShapedArray {
        let halfStep = schedule.trainTimestepCount / stepCount / 2
        let previousTimestep = timestep - (counter % 2 == 1 ? 0 : halfStep)
        let groupTimestep = rungeKuttaTimesteps[counter / 4 * 4]
        var output = modelOutput
        let sixth = Float(1.0 / 6.0), third = Float(1.0 / 3.0)
        switch counter % 4 {
        case 0:
            rungeKuttaSum = accumulate(rungeKuttaSum, modelOutput, weight: sixth)
            history.append(modelOutput)
            startSample = sample
        case 1, 2:
            rungeKuttaSum = accumulate(rungeKuttaSum, modelOutput, weight: third)
        default:
            output = accumulate(rungeKuttaSum, modelOutput, weight: sixth)
            rungeKuttaSum = nil
        }
        let result = try previousSample(startSample ?? sample, timestep: groupTimestep, previousTimestep: previousTimestep, modelOutput: output)
        counter += 1
        return result
    }

    /// A pseudo linear multistep step: Adams-Bashforth over the kept noise predictions.
    private func linearMultistepStep(modelOutput: ShapedArray, timestep: Int, sample: ShapedArray) throws -> ShapedArray {
        if !skipsRungeKutta && history.count < 3 {
            throw SchedulerError.invalidConfiguration("PNDMScheduler: PLMS steps need the 12 Runge-Kutta warm-up calls first")
        }
        let stride = schedule.trainTimestepCount / stepCount
        var currentTimestep = timestep
        var previousTimestep = timestep - stride
        if counter != 1 {
            history = Array(history.suffix(3)) + [modelOutput]
        } else {
            // The repeated first timestep: re-step from the first sample with the averaged slope.
            previousTimestep = timestep
            currentTimestep = timestep + stride
        }
        var start = sample
        let combined: ShapedArray
        switch history.count {
        case 1 where counter == 0:
            combined = modelOutput
            startSample = sample
        case 1 where counter == 1:
            guard let first = startSample else {
                throw SchedulerError.invalidConfiguration("PNDMScheduler: the second PLMS call came without a first")
            }
            combined = modelOutput.zip(history[0]) { ($0 + $1) / 2 }
            start = first
            startSample = nil
        case 1:
            throw SchedulerError.invalidConfiguration("PNDMScheduler: step history lost (call \(counter))")
        case 2:
            combined = history[1].zip(history[0]) { (3 * $0 - $1) / 2 }
        case 3:
            combined = combine(history, coefficients: [5, -16, 23]).map { $0 / 12 }
        default:
            let weight = Float(1.0 / 24.0)
            combined = combine(history, coefficients: [-9, 37, -59, 55]).map { weight * $0 }
        }
        let result = try previousSample(start, timestep: currentTimestep, previousTimestep: previousTimestep, modelOutput: combined)
        counter += 1
        return result
    }

    /// `sum + weight * output`, where a missing sum is zero.
    private func accumulate(_ sum: ShapedArray?, _ output: ShapedArray, weight: Float) -> ShapedArray {
        let weighted = output.map { weight * $0 }
        guard let sum else { return weighted }
        return sum.zip(weighted, +)
    }

    /// Σ c_i e_i over the history (oldest first), accumulated newest first as diffusers writes
    /// the formulas, with a subtraction for each negative coefficient.
    private func combine(_ outputs: [ShapedArray], coefficients: [Float]) -> ShapedArray {
        var result = outputs[outputs.count - 1].map { coefficients[coefficients.count - 1] * $0 }
        for offset in (0..<(outputs.count - 1)).reversed() {
            let coefficient = coefficients[offset]
            let magnitude = abs(coefficient)
            result = result.zip(outputs[offset]) { coefficient < 0 ? $0 - magnitude * $1 : $0 + magnitude * $1 }
        }
        return result
    }

    /// PNDM's transfer from `timestep` to `previousTimestep` (the paper's eq. 9) given a noise
    /// prediction, in float32 as diffusers computes it.
    private func previousSample(_ sample: ShapedArray, timestep: Int, previousTimestep: Int, modelOutput: ShapedArray) throws -> ShapedArray {
        let table = schedule.alphasCumulativeProduct
        guard table.indices.contains(timestep), previousTimestep < table.count else {
            throw SchedulerError.timestepNotInSchedule("PNDMScheduler", Double(timestep))
        }
        let alphaProduct = table[timestep]
        let alphaProductPrevious = previousTimestep >= 0 ? table[previousTimestep] : finalAlphaCumulativeProduct
        let betaProduct = 1 - alphaProduct
        let betaProductPrevious = 1 - alphaProductPrevious
        var epsilon = modelOutput
        if predictionType == "v_prediction" {
            let alphaRoot = alphaProduct.squareRoot(), betaRoot = betaProduct.squareRoot()
            epsilon = modelOutput.zip(sample) { alphaRoot * $0 + betaRoot * $1 }
        }
        let sampleCoefficient = (alphaProductPrevious / alphaProduct).squareRoot()
        let denominator = alphaProduct * betaProductPrevious.squareRoot()
            + (alphaProduct * betaProduct * alphaProductPrevious).squareRoot()
        let difference = alphaProductPrevious - alphaProduct
        return sample.zip(epsilon) { sampleCoefficient * $0 - difference * $1 / denominator }
    }

    public func addNoise(to original: ShapedArray, noise: ShapedArray, timestep: Double) throws -> ShapedArray {
        try DiscreteNoising.addNoise(to: original, noise: noise, timestep: timestep, schedule: schedule, scheduler: "PNDMScheduler")
    }
}
