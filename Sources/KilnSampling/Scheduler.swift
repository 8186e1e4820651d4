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

    /// Prepares the schedule for `stepCount` inference steps and resets any step history.
    func setTimesteps(_ stepCount: Int) throws
    /// The model input for `timestep`: the sample divided by sqrt(sigma² + 1) where that applies.
    func scaleModelInput(_ sample: ShapedArray, timestep: Double) throws -> ShapedArray
    /// One sampling step from `sample` at `timestep` to the next sample. `noise` must be given for
    /// samplers that inject noise; it is advanced exactly as diffusers advances its generator.
    func step(modelOutput: ShapedArray, timestep: Double, sample: ShapedArray, noise: NoiseGenerator?) throws -> ShapedArray
    /// `original` noised to the level of `timestep` (img2img, inpainting).
    func addNoise(to original: ShapedArray, noise: ShapedArray, timestep: Double) throws -> ShapedArray
}

/// The scheduler classes Kiln implements, named as diffusers names them in `_class_name`.
public enum SchedulerKind: String, CaseIterable, Sendable {
    case ddim = "DDIMScheduler"
    case eulerDiscrete = "EulerDiscreteScheduler"
    case eulerAncestralDiscrete = "EulerAncestralDiscreteScheduler"
    case dpmSolverMultistep = "DPMSolverMultistepScheduler"

    /// A scheduler of this kind built from any scheduler's configuration, like diffusers'
    /// `SchedulerClass.from_config(pipe.scheduler.config)`.
    public func makeScheduler(configuration: SchedulerConfiguration) throws -> any Scheduler {
        switch self {
        case .ddim: return try DDIMScheduler(configuration: configuration)
        case .eulerDiscrete: return try EulerDiscreteScheduler(configuration: configuration)
        case .eulerAncestralDiscrete: return try EulerAncestralDiscreteScheduler(configuration: configuration)
        case .dpmSolverMultistep: return try DPMSolverMultistepScheduler(configuration: configuration)
        }
    }

    /// The scheduler the configuration itself names in `_class_name`.
    public static func makeScheduler(configuration: SchedulerConfiguration) throws -> any Scheduler {
        guard let name = configuration.className, let kind = SchedulerKind(rawValue: name) else {
            throw SchedulerError.unsupported("_class_name \(configuration.className ?? "missing")")
        }
        return try kind.makeScheduler(configuration: configuration)
    }
}
