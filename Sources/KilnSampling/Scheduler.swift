/// A diffusion sampler with diffusers' exact semantics, shaped like Apple's ml-stable-diffusion
/// `Scheduler`: build it from a configuration, ask for timesteps, then per step scale the model
/// input, run the model, and call `step`.
///
/// Schedulers are stateful (multistep history, step index), hence classes; use one per generation.
public protocol Scheduler: AnyObject {
    /// The configuration this scheduler was built from (unset keys take this class's defaults).
    var configuration: SchedulerConfiguration { get }
    /// The timesteps of the current schedule, in the order the model is called. Integer for
    /// DDPM-style schedulers, float32 values for sigma-based ones; `[]` until `setTimesteps`.
    var timesteps: [Double] { get }
    /// The noise levels of the current schedule plus the final one (`[]` for schedulers without).
    var sigmas: [Float] { get }
    /// The scale of the initial noise: multiply `randn` latents by it before the first step.
    var initNoiseSigma: Float { get }
    /// Model calls per `timesteps` entry that make one solver step (2 for Heun).
    var order: Int { get }
    /// Whether `step` may draw from the noise generator (ancestral, DDPM, LCM, stochastic flow):
    /// such a scheduler needs a generator, and its results depend on the generator's state.
    var isStochastic: Bool { get }

    /// Prepares the schedule for `stepCount` inference steps and resets any step history.
    /// `mu` is the resolution-dependent shift of flow-matching models with dynamic shifting
    /// (diffusers' `set_timesteps(..., mu=)`); every other scheduler rejects it.
    func setTimesteps(_ stepCount: Int, mu: Double?) throws
    /// Starts stepping at schedule index `index` instead of searching for the first timestep, as
    /// diffusers' `set_begin_index(t_start * order)` does for img2img. Call after `setTimesteps`.
    /// Schedulers that diffusers indexes by timestep value (DDIM, DDPM, PNDM) ignore it, as
    /// diffusers' pipelines do when the class has no `set_begin_index`.
    func setBeginIndex(_ index: Int)
    /// The model input for `timestep`: the sample divided by sqrt(sigma² + 1) where that applies.
    func scaleModelInput(_ sample: ShapedArray, timestep: Double) throws -> ShapedArray
    /// One sampling step from `sample` at `timestep` to the next sample. `noise` must be given for
    /// samplers that inject noise; it is advanced exactly as diffusers advances its generator.
    func step(modelOutput: ShapedArray, timestep: Double, sample: ShapedArray, noise: NoiseGenerator?) throws -> ShapedArray
    /// `original` noised to the level of `timestep` (img2img, inpainting). Flow matching mixes
    /// instead of adding (diffusers' `scale_noise`).
    func addNoise(to original: ShapedArray, noise: ShapedArray, timestep: Double) throws -> ShapedArray
}

extension Scheduler {
    /// `setTimesteps(stepCount, mu: nil)`: the schedule of every model without dynamic shifting.
    public func setTimesteps(_ stepCount: Int) throws {
        try setTimesteps(stepCount, mu: nil)
    }
}

/// Throws unless `mu` is nil: only flow matching with dynamic shifting takes one.
func rejectShiftParameter(_ mu: Double?, scheduler: String) throws {
    if let mu { throw SchedulerError.shiftParameterNotAccepted(scheduler, mu) }
}

/// Throws unless both arrays have the same shape (the elementwise steps would otherwise trap).
func requireSameShape(_ first: ShapedArray, _ second: ShapedArray, scheduler: String) throws {
    guard first.shape == second.shape else {
        throw SchedulerError.shapeMismatch(scheduler, first.shape, second.shape)
    }
}

/// The scheduler classes Kiln implements, named as diffusers names them in `_class_name`.
public enum SchedulerKind: String, CaseIterable, Sendable {
    case ddim = "DDIMScheduler"
    case eulerDiscrete = "EulerDiscreteScheduler"
    case eulerAncestralDiscrete = "EulerAncestralDiscreteScheduler"
    case dpmSolverMultistep = "DPMSolverMultistepScheduler"
    case ddpm = "DDPMScheduler"
    case pndm = "PNDMScheduler"
    case heunDiscrete = "HeunDiscreteScheduler"
    case lcm = "LCMScheduler"
    case flowMatchEulerDiscrete = "FlowMatchEulerDiscreteScheduler"

    /// A scheduler of this kind built from any scheduler's configuration, like diffusers'
    /// `SchedulerClass.from_config(pipe.scheduler.config)`.
    public func makeScheduler(configuration: SchedulerConfiguration) throws -> any Scheduler {
        switch self {
        case .ddim: return try DDIMScheduler(configuration: configuration)
        case .eulerDiscrete: return try EulerDiscreteScheduler(configuration: configuration)
        case .eulerAncestralDiscrete: return try EulerAncestralDiscreteScheduler(configuration: configuration)
        case .dpmSolverMultistep: return try DPMSolverMultistepScheduler(configuration: configuration)
        case .ddpm: return try DDPMScheduler(configuration: configuration)
        case .pndm: return try PNDMScheduler(configuration: configuration)
        case .heunDiscrete: return try HeunDiscreteScheduler(configuration: configuration)
        case .lcm: return try LCMScheduler(configuration: configuration)
        case .flowMatchEulerDiscrete: return try FlowMatchEulerDiscreteScheduler(configuration: configuration)
        }
    }

    /// Whether diffusers' class takes `use_karras_sigmas` / `use_exponential_sigmas`; the others
    /// ignore both keys, so a sigma-spacing request cannot apply to them.
    public var supportsSigmaSpacing: Bool {
        switch self {
        case .eulerDiscrete, .heunDiscrete, .dpmSolverMultistep, .flowMatchEulerDiscrete: return true
        case .ddim, .eulerAncestralDiscrete, .ddpm, .pndm, .lcm: return false
        }
    }

    /// The kind the configuration itself names in `_class_name`.
    public static func named(in configuration: SchedulerConfiguration) throws -> SchedulerKind {
        guard let name = configuration.className, let kind = SchedulerKind(rawValue: name) else {
            throw SchedulerError.unsupported("_class_name \(configuration.className ?? "missing")")
        }
        return kind
    }

    /// The scheduler the configuration itself names in `_class_name`.
    public static func makeScheduler(configuration: SchedulerConfiguration) throws -> any Scheduler {
        try named(in: configuration).makeScheduler(configuration: configuration)
    }

    /// The scheduler the configuration names, with a sigma-spacing override (nil keeps the
    /// configuration's own spacing).
    public static func makeScheduler(configuration: SchedulerConfiguration, spacing: SigmaSpacing?) throws -> any Scheduler {
        let kind = try named(in: configuration)
        let spaced = try spacing.map { try $0.applied(to: configuration, for: kind) } ?? configuration
        return try kind.makeScheduler(configuration: spaced)
    }
}
