import KilnGraph
import KilnSampling

/// Classifier-free guidance and an affine scheduler step appended to a denoiser's graph
/// (`Graph.guidedStep`): the graph returns the next latents `[N, C, h, w]` (f32) instead of the
/// prediction, which then never leaves the device.
struct DeviceStep: Equatable, CustomStringConvertible {
    let latentShape: [Int]
    /// Whether the scheduler adds fresh noise each step (ancestral, stochastic flow).
    let hasNoise: Bool

    var description: String { "step\(latentShape)\(hasNoise ? "+noise" : "")" }

    /// The scheduler in its affine form and the step for latents of `latentShape`, when `enabled`
    /// and every step of the scheduler's configuration is affine; nil keeps the host path.
    static func chosen(for scheduler: any Scheduler, latentShape: [Int], enabled: Bool)
        -> (scheduler: any AffineStepScheduler, step: DeviceStep)? {
        guard enabled, let affine = scheduler as? any AffineStepScheduler, affine.stepsAreAffine else { return nil }
        return (affine, DeviceStep(latentShape: latentShape, hasNoise: affine.isStochastic))
    }

    /// The step's inputs (`step_sample`, `step_coefficients`, `step_noise`) after `prediction`
    /// `[M, C, h, w]` (M = 2N: unconditional then conditional halves; M = N: no guidance).
    func appended(to graph: Graph, prediction: Tensor) throws -> Tensor {
        try graph.guidedStep(
            prediction: prediction, sample: graph.input("step_sample", Shape(latentShape)),
            coefficients: graph.input("step_coefficients", [4]), noise: hasNoise ? graph.input("step_noise", Shape(latentShape)) : nil)
    }

    /// Runs `graph` (prepared with the step appended) on the denoiser's `inputs` plus the step's:
    /// the latents after one step from `latents`. `guidanceScale` is ignored without guidance.
    static func run(
        _ graph: any PreparedGraph, inputs: [String: HostTensor], latents: ShapedArray, step: AffineStep, guidanceScale: Float
    ) throws -> ShapedArray {
        var inputs = inputs
        inputs["step_sample"] = latents.hostTensor()
        inputs["step_coefficients"] = HostTensor(shape: [4], scalars: [guidanceScale, step.sampleScale, step.outputScale, step.noise?.scale ?? 0])
        if let noise = step.noise { inputs["step_noise"] = HostTensor(shape: Shape(latents.shape), scalars: noise.values) }
        return ShapedArray(try graph.run(inputs)[0])
    }
}
