/// The sampler names of `kiln generate --sampler`, each a diffusers scheduler class plus the
/// settings the name implies on top of the model's own scheduler configuration.
///
/// Swapping keeps every other key of the model's configuration, as diffusers'
/// `SamplerClass.from_config(pipe.scheduler.config)` does; only `dpm++2m` forces settings
/// (`algorithm_type` dpmsolver++, `solver_order` 2), the way A1111's "DPM++ 2M" is defined.
public enum SamplerName: String, CaseIterable, Sendable {
    case ddpm
    case ddim
    case pndm
    case euler
    case eulerAncestral = "euler_a"
    case heun
    case dpmPlusPlus2M = "dpm++2m"
    case lcm
    case flowEuler = "flow_euler"

    /// Parses a name case-insensitively; the error lists the valid names.
    public init(parsing name: String) throws {
        guard let sampler = SamplerName(rawValue: name.lowercased()) else {
            throw SchedulerError.unknownName(kind: "sampler", name: name, validNames: Self.allCases.map(\.rawValue))
        }
        self = sampler
    }

    /// The diffusers class this name stands for.
    public var kind: SchedulerKind {
        switch self {
        case .ddpm: return .ddpm
        case .ddim: return .ddim
        case .pndm: return .pndm
        case .euler: return .eulerDiscrete
        case .eulerAncestral: return .eulerAncestralDiscrete
        case .heun: return .heunDiscrete
        case .dpmPlusPlus2M: return .dpmSolverMultistep
        case .lcm: return .lcm
        case .flowEuler: return .flowMatchEulerDiscrete
        }
    }

    /// The model's configuration as this sampler reads it: `_class_name` names the sampler's
    /// class, and `dpm++2m` forces its two settings.
    public func configuration(from modelConfiguration: SchedulerConfiguration) -> SchedulerConfiguration {
        var configuration = modelConfiguration
        configuration.className = kind.rawValue
        if self == .dpmPlusPlus2M {
            configuration.algorithmType = "dpmsolver++"
            configuration.solverOrder = 2
        }
        return configuration
    }

    /// This sampler built from the model's scheduler configuration, with an optional sigma-spacing
    /// override (nil keeps the configuration's own `use_karras_sigmas` / `use_exponential_sigmas`).
    public func makeScheduler(configuration modelConfiguration: SchedulerConfiguration, spacing: SigmaSpacing? = nil) throws -> any Scheduler {
        var configuration = configuration(from: modelConfiguration)
        if let spacing { configuration = try spacing.applied(to: configuration, for: kind) }
        return try kind.makeScheduler(configuration: configuration)
    }
}
