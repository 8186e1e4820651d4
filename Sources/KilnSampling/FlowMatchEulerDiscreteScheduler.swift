import Foundation

/// Euler's method on a rectified-flow / flow-matching ODE (Lipman et al., "Flow Matching for
/// Generative Modeling", https://arxiv.org/abs/2210.02747; Esser et al., "Scaling Rectified Flow
/// Transformers for High-Resolution Image Synthesis", https://arxiv.org/abs/2403.03206), matching
/// diffusers' `FlowMatchEulerDiscreteScheduler` (SD3, Flux).
///
/// The sample is x_σ = (1 - σ)·x₀ + σ·ε and the model predicts the velocity ε - x₀, so a step is
/// x + (σ_next - σ)·v. Timesteps are σ·1000. The sigmas are shifted toward noise by `shift`
/// (SD3), or with `use_dynamic_shifting` by the resolution-dependent `mu` the pipeline computes
/// (Flux; see ``SchedulerConfiguration/dynamicShift(imageSequenceLength:)``). Also supports
/// `shift_terminal`, `invert_sigmas`, Karras and exponential sigmas, the linear time shift and
/// `stochastic_sampling` (one `randn` per step, as diffusers draws it).
public final class FlowMatchEulerDiscreteScheduler: Scheduler {
    public let configuration: SchedulerConfiguration
    public private(set) var timesteps: [Double] = []
    public private(set) var sigmas: [Float] = []
    /// Flow-matching pipelines start from unit noise.
    public let initNoiseSigma: Float = 1
    public let order = 1
    public var isStochastic: Bool { configuration.stochasticSampling ?? false }
    private let trainCount: Int
    private let shift: Double
    private let usesDynamicShifting: Bool
    private let timeShiftType: String
    private let conversion: SigmaSpacingConversion
    /// The largest and smallest sigma of the training schedule, which the inference schedule spans.
    private let trainingSigmaMax: Double
    private let trainingSigmaMin: Double
    private var stepIndex = StepIndexTracker()

    public init(configuration: SchedulerConfiguration) throws {
        let name = "FlowMatchEulerDiscreteScheduler"
        self.configuration = configuration
        trainCount = try configuration.checkedTrainTimestepCount(scheduler: name)
        shift = configuration.shift ?? 1
        usesDynamicShifting = configuration.useDynamicShifting ?? false
        timeShiftType = configuration.timeShiftType ?? "exponential"
        guard timeShiftType == "exponential" || timeShiftType == "linear" else {
            throw SchedulerError.invalidConfiguration("\(name) time_shift_type \(timeShiftType): use exponential or linear")
        }
        conversion = try SigmaSpacingConversion(configuration: configuration, scheduler: name)
        // The training table runs t = N, N-1, ..., 1 in float32; σ = t / N, statically shifted
        // unless the shift is dynamic. Only its two ends matter for inference.
        var ends: [Float] = [Float(trainCount) / Float(trainCount), Float(1) / Float(trainCount)]
        if !usesDynamicShifting { ends = Self.staticallyShifted(ends, shift: shift) }
        trainingSigmaMax = Double(ends[0])
        trainingSigmaMin = Double(ends[1])
    }

    /// Starts at schedule index `beginIndex` (img2img passes `t_start`).
    public func setBeginIndex(_ beginIndex: Int) { stepIndex.begin = beginIndex }

    /// The schedule for `stepCount` steps, evenly spaced in σ before shifting. `mu` is required
    /// with `use_dynamic_shifting` and ignored without it, as diffusers ignores it.
    public func setTimesteps(_ stepCount: Int, mu: Double?) throws {
        let name = "FlowMatchEulerDiscreteScheduler"
        guard stepCount > 0 else { throw SchedulerError.invalidConfiguration("\(name): \(stepCount) steps") }
        if usesDynamicShifting && mu == nil { throw SchedulerError.shiftParameterRequired(name) }
        // diffusers spaces the timesteps in float64 between the training ends.
        let unshifted = NoiseSchedule.linspace(
            from: trainingSigmaMax * Double(trainCount), to: trainingSigmaMin * Double(trainCount), count: stepCount
        ).map { $0 / Double(trainCount) }
        finish(shifted(unshifted, mu: mu), count: stepCount)
    }

    /// The schedule from the pipeline's own unshifted sigmas, largest first (Flux passes
    /// `linspace(1, 1/n, n)`), like diffusers' `set_timesteps(sigmas=..., mu=...)`: the sigmas
    /// are rounded to float32 first and shifted in float32.
    public func setTimesteps(sigmas unshifted: [Double], mu: Double?) throws {
        let name = "FlowMatchEulerDiscreteScheduler"
        guard !unshifted.isEmpty else { throw SchedulerError.invalidConfiguration("\(name): no sigmas") }
        if usesDynamicShifting && mu == nil { throw SchedulerError.shiftParameterRequired(name) }
        finish(shifted(unshifted.map { Float($0) }, mu: mu), count: unshifted.count)
    }

    /// The dynamic (exponential or linear in `mu`) or static shift, then `shift_terminal`, in
    /// the precision of the input as numpy computes it.
    private func shifted<Value: BinaryFloatingPoint>(_ values: [Value], mu: Double?) -> [Value] {
        var result: [Value]
        if usesDynamicShifting, let mu {
            // With the exponent σ = 1 of diffusers' time shift, (1/t - 1)^1 is exact.
            let factor = Value(timeShiftType == "exponential" ? Foundation.exp(mu) : mu)
            result = values.map { factor / (factor + (1 / $0 - 1)) }
        } else {
            result = Self.staticallyShifted(values, shift: shift)
        }
        if let terminal = configuration.shiftTerminal, terminal != 0, let last = result.last {
            // Stretch so the last sigma becomes `terminal` while σ = 1 stays put.
            let scale = (1 - last) / Value(1 - terminal)
            result = result.map { 1 - (1 - $0) / scale }
        }
        return result
    }

    /// shift·σ / (1 + (shift - 1)·σ), the SD3 resolution shift.
    private static func staticallyShifted<Value: BinaryFloatingPoint>(_ values: [Value], shift: Double) -> [Value] {
        let factor = Value(shift), excess = Value(shift - 1)
        return values.map { factor * $0 / (1 + excess * $0) }
    }

    /// Spacing conversion, float32 rounding, timesteps σ·N, inversion and the terminal sigma.
    private func finish<Value: BinaryFloatingPoint>(_ shiftedSigmas: [Value], count: Int) {
        let wide = shiftedSigmas.map { Double($0) }
        var levels = (conversion.converted(wide, count: count, configuration: configuration) ?? wide).map { Float($0) }
        let scale = Float(trainCount)
        var steps = levels.map { Double($0 * scale) }
        var terminal: Float = 0
        if configuration.invertSigmas ?? false {
            levels = levels.map { 1 - $0 }
            steps = levels.map { Double($0 * scale) }
            terminal = 1
        }
        sigmas = levels + [terminal]
        timesteps = steps
        stepIndex.reset()
    }

    /// The sample unchanged: flow-matching models take the sample as it is.
    public func scaleModelInput(_ sample: ShapedArray, timestep: Double) -> ShapedArray { sample }

    public func step(modelOutput: ShapedArray, timestep: Double, sample: ShapedArray, noise: NoiseGenerator?) throws -> ShapedArray {
        let name = "FlowMatchEulerDiscreteScheduler"
        try requireSameShape(modelOutput, sample, scheduler: name)
        let index = try resolveStep(timestep)
        let sigma = sigmas[index]
        let sigmaNext = sigmas[index + 1]
        let result: ShapedArray
        if isStochastic {
            guard let noise else { throw SchedulerError.noiseGeneratorRequired(name) }
            // Jump to the clean estimate, then re-noise it to the next level with fresh noise.
            let clean = sample.zip(modelOutput) { $0 - sigma * $1 }
            let fresh = noise.normal(count: sample.scalars.count)
            let keep = 1 - sigmaNext
            var mixed = clean
            for position in mixed.scalars.indices {
                mixed.scalars[position] = keep * clean.scalars[position] + sigmaNext * fresh[position]
            }
            result = mixed
        } else {
            let stepSize = sigmaNext - sigma
            result = sample.zip(modelOutput) { $0 + stepSize * $1 }
        }
        return result
    }

    /// The schedule index of `timestep`, moving the step index past it as a step does.
    func resolveStep(_ timestep: Double) throws -> Int {
        try stepIndex.advance(past: timestep, in: timesteps, scheduler: "FlowMatchEulerDiscreteScheduler")
    }

    /// diffusers' `scale_noise`: σ·noise + (1 - σ)·original at `timestep`'s sigma.
    public func addNoise(to original: ShapedArray, noise: ShapedArray, timestep: Double) throws -> ShapedArray {
        let name = "FlowMatchEulerDiscreteScheduler"
        try requireSameShape(original, noise, scheduler: name)
        let index = try stepIndex.noisingIndex(timestep: timestep, in: timesteps, scheduler: name)
        let sigma = sigmas[index]
        let keep = 1 - sigma
        return noise.zip(original) { sigma * $0 + keep * $1 }
    }
}

extension SchedulerConfiguration {
    /// The `mu` of dynamic shifting for a latent of `imageSequenceLength` patches (Flux: (H/16)·(W/16)),
    /// diffusers' `calculate_shift`: linear from `base_shift` at `base_image_seq_len` to `max_shift`
    /// at `max_image_seq_len` (defaults 0.5 at 256, 1.15 at 4096).
    public func dynamicShift(imageSequenceLength: Int) -> Double {
        let baseLength = Double(baseImageSeqLen ?? 256), maxLength = Double(maxImageSeqLen ?? 4096)
        let base = baseShift ?? 0.5, maximum = maxShift ?? 1.15
        let slope = (maximum - base) / (maxLength - baseLength)
        let intercept = base - slope * baseLength
        return Double(imageSequenceLength) * slope + intercept
    }
}
