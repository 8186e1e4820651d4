/// The `--scheduler` override of how a sigma-based sampler spaces its noise levels, applied to a
/// configuration as diffusers' `from_config(config, use_karras_sigmas=..., ...)` applies it.
public enum SigmaSpacing: String, CaseIterable, Sendable {
    /// The plain spacing of `timestep_spacing`: Karras and exponential spacing both off.
    case `default`
    /// Karras et al.'s rho = 7 spacing (https://arxiv.org/abs/2206.00364), `use_karras_sigmas`.
    case karras
    /// Evenly spaced in log sigma, `use_exponential_sigmas`.
    case exponential

    /// Parses a name case-insensitively; the error lists the valid names.
    public init(parsing name: String) throws {
        guard let spacing = SigmaSpacing(rawValue: name.lowercased()) else {
            throw SchedulerError.unknownName(kind: "sigma spacing", name: name, validNames: Self.allCases.map(\.rawValue))
        }
        self = spacing
    }

    /// `configuration` with this spacing switched on and the other one off, for a scheduler of
    /// `kind`. Karras and exponential spacing throw for kinds whose diffusers class has no such
    /// option (DDIM, DDPM, PNDM, Euler ancestral, LCM), rather than being silently ignored.
    public func applied(to configuration: SchedulerConfiguration, for kind: SchedulerKind) throws -> SchedulerConfiguration {
        var copy = configuration
        switch self {
        case .default:
            copy.useKarrasSigmas = false
            copy.useExponentialSigmas = false
        case .karras, .exponential:
            guard kind.supportsSigmaSpacing else {
                throw SchedulerError.unsupported(
                    "\(rawValue) sigma spacing for \(kind.rawValue): diffusers' class has no use_\(rawValue)_sigmas")
            }
            copy.useKarrasSigmas = self == .karras
            copy.useExponentialSigmas = self == .exponential
        }
        return copy
    }
}
