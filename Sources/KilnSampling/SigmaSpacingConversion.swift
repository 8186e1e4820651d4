import Foundation

/// Which re-spacing of the noise levels a sigma-based scheduler's configuration asks for:
/// diffusers' `use_karras_sigmas` / `use_exponential_sigmas` / `use_beta_sigmas` choice, made in
/// `set_timesteps` after the plain schedule is built.
enum SigmaSpacingConversion: Sendable {
    case none
    /// Karras et al. ("Elucidating the Design Space of Diffusion-Based Generative Models",
    /// https://arxiv.org/abs/2206.00364, eq. 5), rho = 7.
    case karras
    /// Evenly spaced in log sigma (diffusers' `_convert_to_exponential`).
    case exponential

    /// The conversion `configuration` selects; throws as diffusers does when more than one is set,
    /// and for beta sigmas, which need scipy's inverse incomplete beta function.
    init(configuration: SchedulerConfiguration, scheduler: String) throws {
        let karras = configuration.useKarrasSigmas ?? false
        let exponential = configuration.useExponentialSigmas ?? false
        let beta = configuration.useBetaSigmas ?? false
        if [karras, exponential, beta].filter({ $0 }).count > 1 {
            throw SchedulerError.invalidConfiguration(
                "[\(scheduler)] only one of use_karras_sigmas, use_exponential_sigmas, use_beta_sigmas can be set")
        }
        if beta { throw SchedulerError.unsupported("[\(scheduler)] use_beta_sigmas") }
        self = karras ? .karras : exponential ? .exponential : .none
    }

    /// `count` re-spaced sigmas from the largest to the smallest of `sigmas` (ordered largest
    /// first), or nil for `.none`. `sigma_min` / `sigma_max` in the configuration replace the
    /// end points, as diffusers reads them from the config when the keys are present.
    func converted(_ sigmas: [Double], count: Int, configuration: SchedulerConfiguration) -> [Double]? {
        guard let first = sigmas.first, let last = sigmas.last else { return nil }
        let sigmaMin = configuration.sigmaMin ?? last
        let sigmaMax = configuration.sigmaMax ?? first
        switch self {
        case .none:
            return nil
        case .karras:
            return NoiseSchedule.karrasSigmas(sigmaMin: sigmaMin, sigmaMax: sigmaMax, count: count)
        case .exponential:
            return NoiseSchedule.linspace(from: Foundation.log(sigmaMax), to: Foundation.log(sigmaMin), count: count)
                .map { Foundation.exp($0) }
        }
    }

    /// The Euler family's schedule before its final sigma (EulerDiscreteScheduler and
    /// HeunDiscreteScheduler build it alike): the spaced timesteps made float32 as diffusers makes
    /// them, their sigmas interpolated in `trainingSigmas`, then re-spaced by this conversion with
    /// each timestep read back from its new sigma (float32 too).
    func levels(
        stepCount: Int, trainingSigmas: [Float], trainCount: Int, configuration: SchedulerConfiguration
    ) throws -> (timesteps: [Double], sigmas: [Double]) {
        let spaced = try NoiseSchedule.spacedTimesteps(
            spacing: configuration.timestepSpacing ?? "linspace", stepCount: stepCount,
            trainCount: trainCount, stepsOffset: configuration.stepsOffset ?? 0)
        let steps = spaced.map { Double(Float($0)) }
        let levels = steps.map { NoiseSchedule.interpolate($0, in: trainingSigmas) }
        guard let converted = converted(levels, count: stepCount, configuration: configuration) else { return (steps, levels) }
        let logSigmas = trainingSigmas.map { Foundation.log($0) }
        return (converted.map { Double(Float(NoiseSchedule.timestep(forSigma: $0, logSigmas: logSigmas))) }, converted)
    }
}
