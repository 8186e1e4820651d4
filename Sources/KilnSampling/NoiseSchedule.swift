import Foundation

/// The training noise schedule shared by the DDPM-family schedulers (Ho et al., "Denoising
/// Diffusion Probabilistic Models", https://arxiv.org/abs/2006.11239), with diffusers' roundings.
///
/// diffusers keeps betas and their cumulative product as float32 tensors; torch's CPU `cumprod`
/// accumulates in float64 and rounds each prefix, which `alphasCumulativeProduct` mirrors.
struct NoiseSchedule: Sendable {
    let trainTimestepCount: Int
    let betas: [Float]
    let alphasCumulativeProduct: [Float]

    /// `defaultBetaStart`, `defaultBetaEnd` and `defaultSchedule` are the class's own defaults
    /// (Heun and LCM differ from DDPM's); `rescalesToZeroSNR` is false for classes without the
    /// `rescale_betas_zero_snr` key, which then ignore it as diffusers' `from_config` does.
    init(
        configuration: SchedulerConfiguration, defaultBetaStart: Double = 0.0001, defaultBetaEnd: Double = 0.02,
        defaultSchedule: String = "linear", rescalesToZeroSNR: Bool = true
    ) throws {
        let count = try configuration.checkedTrainTimestepCount()
        let start = configuration.betaStart ?? defaultBetaStart
        let end = configuration.betaEnd ?? defaultBetaEnd
        var betas: [Float]
        if let trained = configuration.trainedBetas {
            betas = trained.map { Float($0) }
        } else {
            switch configuration.betaSchedule ?? defaultSchedule {
            case "linear":
                betas = Self.linspace(from: start, to: end, count: count).map { Float($0) }
            case "scaled_linear":
                // torch squares the float32 linspace of the square roots.
                betas = Self.linspace(from: start.squareRoot(), to: end.squareRoot(), count: count).map {
                    let root = Float($0)
                    return root * root
                }
            case "squaredcos_cap_v2":
                betas = Self.cosineBetas(count: count)
            case let other:
                throw SchedulerError.unsupported("beta_schedule \(other)")
            }
        }
        if rescalesToZeroSNR && (configuration.rescaleBetasZeroSnr ?? false) { betas = Self.rescaledToZeroTerminalSNR(betas) }
        var cumulative = [Float]()
        cumulative.reserveCapacity(betas.count)
        var product = 1.0
        for beta in betas {
            product *= Double(1 - beta)
            cumulative.append(Float(product))
        }
        self.trainTimestepCount = betas.count
        self.betas = betas
        self.alphasCumulativeProduct = cumulative
    }

    /// The training-table index of an integer timestep, checked (a bad timestep would trap).
    func trainingIndex(_ timestep: Double, scheduler: String) throws -> Int {
        guard timestep >= 0, timestep < Double(trainTimestepCount), timestep == timestep.rounded(.towardZero) else {
            throw SchedulerError.timestepNotInSchedule(scheduler, timestep)
        }
        return Int(timestep)
    }

    /// `sqrt((1 - ᾱ) / ᾱ)` per training timestep, in float32 as diffusers computes it.
    var trainingSigmas: [Float] {
        alphasCumulativeProduct.map { ((1 - $0) / $0).squareRoot() }
    }

    /// numpy's `linspace`: start + i * step, with the last value pinned to `end`.
    static func linspace(from start: Double, to end: Double, count: Int) -> [Double] {
        guard count > 1 else { return count == 1 ? [start] : [] }
        let step = (end - start) / Double(count - 1)
        var values = (0..<count).map { start + Double($0) * step }
        values[count - 1] = end
        return values
    }

    /// Nichol & Dhariwal's cosine schedule ("Improved Denoising Diffusion Probabilistic Models",
    /// https://arxiv.org/abs/2102.09672), betas capped at 0.999.
    static func cosineBetas(count: Int) -> [Float] {
        func alphaBar(_ t: Double) -> Double {
            let value = cos((t + 0.008) / 1.008 * Double.pi / 2)
            return value * value
        }
        return (0..<count).map { index in
            let t1 = Double(index) / Double(count)
            let t2 = Double(index + 1) / Double(count)
            return Float(min(1 - alphaBar(t2) / alphaBar(t1), 0.999))
        }
    }

    /// Lin et al., "Common Diffusion Noise Schedules and Sample Steps are Flawed",
    /// https://arxiv.org/abs/2305.08891, Algorithm 1, in float32 like diffusers.
    static func rescaledToZeroTerminalSNR(_ betas: [Float]) -> [Float] {
        var product = 1.0
        var roots = betas.map { beta -> Float in
            product *= Double(1 - beta)
            return Float(product).squareRoot()
        }
        guard let first = roots.first, let last = roots.last else { return betas }
        let scale = first / (first - last)
        for index in roots.indices { roots[index] = (roots[index] - last) * scale }
        let alphaBars = roots.map { $0 * $0 }
        var alphas = [alphaBars[0]]
        for index in 1..<alphaBars.count { alphas.append(alphaBars[index] / alphaBars[index - 1]) }
        return alphas.map { 1 - $0 }
    }

    /// numpy's `round` (half to even).
    static func roundHalfEven(_ value: Double) -> Double { value.rounded(.toNearestOrEven) }

    /// diffusers' three `timestep_spacing` rules for `stepCount` steps, largest timestep first.
    /// `leading` is `(0..<n) * (T // n) + steps_offset`; `trailing` is `round(arange(T, 0, -T/n)) - 1`;
    /// `linspace` is `linspace(0, T - 1, n)` (not rounded here: some schedulers keep it fractional).
    static func spacedTimesteps(spacing: String, stepCount: Int, trainCount: Int, stepsOffset: Int) throws -> [Double] {
        switch spacing {
        case "leading":
            let ratio = trainCount / stepCount
            return (0..<stepCount).reversed().map { Double($0 * ratio + stepsOffset) }
        case "trailing":
            return arangeDescending(from: Double(trainCount), stepSize: Double(trainCount) / Double(stepCount))
                .map { roundHalfEven($0) - 1 }
        case "linspace":
            return linspace(from: 0, to: Double(trainCount - 1), count: stepCount).reversed()
        default:
            throw SchedulerError.unsupported("timestep_spacing \(spacing)")
        }
    }

    /// For schedulers that index their tables with each timestep (DDPM, DDIM, PNDM): refuses a
    /// timestep past the trained range, where diffusers fails with an index error (`leading`
    /// spacing with `steps_offset` 1 at as many steps as training timesteps). Schedulers that
    /// interpolate sigmas clamp instead, as diffusers' do, and need no check.
    static func requireTrainedRange(_ timesteps: [Double], trainCount: Int, stepsOffset: Int) throws {
        guard let largest = timesteps.max(), largest >= Double(trainCount) else { return }
        throw SchedulerError.unsupported(
            "\(timesteps.count) steps with steps_offset \(stepsOffset): timestep \(Int(largest)) is outside the \(trainCount) trained timesteps (0...\(trainCount - 1)); use fewer steps")
    }

    /// numpy's `arange(start, 0, -step)`: ceil(start / step) values start - i * step.
    static func arangeDescending(from start: Double, stepSize: Double) -> [Double] {
        let count = Int((start / stepSize).rounded(.up))
        return (0..<count).map { start + Double($0) * -stepSize }
    }

    /// numpy's `interp` on the grid 0, 1, ..., values.count - 1.
    static func interpolate(_ position: Double, in values: [Float]) -> Double {
        let last = values.count - 1
        if position <= 0 { return Double(values[0]) }
        if position >= Double(last) { return Double(values[last]) }
        let low = Int(position.rounded(.down))
        let slope = (Double(values[low + 1]) - Double(values[low]))
        return slope * (position - Double(low)) + Double(values[low])
    }

    /// Karras et al.'s noise levels ("Elucidating the Design Space of Diffusion-Based Generative
    /// Models", https://arxiv.org/abs/2206.00364, eq. 5) with rho = 7, from sigmaMax down to sigmaMin.
    static func karrasSigmas(sigmaMin: Double, sigmaMax: Double, count: Int) -> [Double] {
        let rho = 7.0
        let minInverse = pow(sigmaMin, 1 / rho)
        let maxInverse = pow(sigmaMax, 1 / rho)
        return linspace(from: 0, to: 1, count: count).map { ramp in
            pow(maxInverse + ramp * (minInverse - maxInverse), rho)
        }
    }

    /// The fractional training timestep whose log-sigma matches `sigma` (diffusers' `_sigma_to_t`):
    /// linear interpolation in log space between the bracketing float32 table entries.
    static func timestep(forSigma sigma: Double, logSigmas: [Float]) -> Double {
        let logSigma = log(max(sigma, 1e-10))
        // The last table index whose log-sigma is at or below the target, clipped to leave a pair.
        var lowIndex = 0
        for (index, value) in logSigmas.enumerated() where logSigma - Double(value) >= 0 { lowIndex = index }
        lowIndex = min(lowIndex, logSigmas.count - 2)
        let low = logSigmas[lowIndex]
        let high = logSigmas[lowIndex + 1]
        var weight = (Double(low) - logSigma) / Double(low - high)
        weight = min(max(weight, 0), 1)
        return (1 - weight) * Double(lowIndex) + weight * Double(lowIndex + 1)
    }
}

/// What the sigma-space schedulers (Euler, Euler ancestral, DPM-Solver++ multistep) share.
extension NoiseSchedule {
    /// The training sigmas, with the terminal one kept finite under zero-terminal-SNR rescaling:
    /// diffusers pins ᾱ_T to 2^-24 there.
    func sigmaTable(configuration: SchedulerConfiguration) -> [Float] {
        var table = trainingSigmas
        if configuration.rescaleBetasZeroSnr ?? false, let last = table.indices.last {
            let pinned: Float = 0x1p-24
            table[last] = ((1 - pinned) / pinned).squareRoot()
        }
        return table
    }

    /// The initial noise scale: the largest sigma for linspace/trailing spacing, else
    /// sqrt(sigma_max² + 1).
    static func initNoiseSigma(sigmas: [Float], configuration: SchedulerConfiguration) -> Float {
        let largest = sigmas.max() ?? 0
        let spacing = configuration.timestepSpacing ?? "linspace"
        if spacing == "linspace" || spacing == "trailing" { return largest }
        return (largest * largest + 1).squareRoot()
    }

    /// The model input at noise level `sigma`: sample / sqrt(sigma² + 1).
    static func scaledModelInput(_ sample: ShapedArray, sigma: Float) -> ShapedArray {
        let divisor = (sigma * sigma + 1).squareRoot()
        return sample.map { $0 / divisor }
    }
}

/// What the DDPM-family schedulers (DDPM, DDIM, LCM) share: the clean-sample estimate.
extension NoiseSchedule {
    /// x̂₀ at cumulative alpha `alphaProduct` from an epsilon, sample or v prediction (Ho et al.
    /// eq. 15; v per Salimans & Ho, https://arxiv.org/abs/2202.00512), clipped to ±`clip` when
    /// the configuration clips samples.
    static func predictedOriginal(
        sample: ShapedArray, modelOutput: ShapedArray, alphaProduct: Float, predictionType: String, clip: Float?
    ) -> ShapedArray {
        let alphaRoot = alphaProduct.squareRoot()
        let betaRoot = (1 - alphaProduct).squareRoot()
        var original: ShapedArray
        switch predictionType {
        case "epsilon": original = sample.zip(modelOutput) { ($0 - betaRoot * $1) / alphaRoot }
        case "sample": original = modelOutput
        default: original = sample.zip(modelOutput) { alphaRoot * $0 - betaRoot * $1 }
        }
        guard let clip else { return original }
        return original.map { min(max($0, -clip), clip) }
    }

    /// `clip_sample_range` when `clip_sample` is on (`clipsByDefault` when the key is absent).
    static func clipRange(_ configuration: SchedulerConfiguration, clipsByDefault: Bool) -> Float? {
        (configuration.clipSample ?? clipsByDefault) ? Float(configuration.clipSampleRange ?? 1) : nil
    }
}
