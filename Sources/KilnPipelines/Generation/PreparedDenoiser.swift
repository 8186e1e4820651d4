import KilnGraph
import KilnSampling

/// A denoiser — U-Net or transformer — prepared once for one model-input shape, with the
/// inputs that stay the same through one generation (the conditioning, position tables), run
/// every step with the new sample and timestep. Every family's graph takes its sample as input
/// `sample` and one timestep per batch entry as `timesteps` (f32: fractional sigma-space
/// timesteps must not round to f16).
///
/// Shapes: sample `[M, ...]` -> prediction `[M, C_out, ...]` (f32 on the host), or, with a device
/// step appended (`DeviceStep`), the next latents `[N, ...]`.
struct PreparedDenoiser {
    let graph: any PreparedGraph
    /// Inputs besides `sample` and `timesteps`.
    let fixedInputs: [String: HostTensor]
    /// The value a timestep is fed as: the timestep itself, or FLUX's σ (`t / 1000` in f32).
    var timestepValue: @Sendable (Double) -> Float = { Float($0) }

    func predict(_ sample: ShapedArray, timestep: Double) throws -> ShapedArray {
        ShapedArray(try graph.run(inputs(sample, timestep: timestep))[0])
    }

    /// The latents after one step from `latents` (prepared with a device step): the model on
    /// `sample`, guidance at `guidanceScale`, then `step`.
    func step(_ sample: ShapedArray, latents: ShapedArray, timestep: Double, step: AffineStep, guidanceScale: Float) throws -> ShapedArray {
        try DeviceStep.run(graph, inputs: inputs(sample, timestep: timestep), latents: latents, step: step, guidanceScale: guidanceScale)
    }

    private func inputs(_ sample: ShapedArray, timestep: Double) -> [String: HostTensor] {
        var inputs = fixedInputs
        let batch = sample.shape[0]
        inputs["sample"] = sample.hostTensor()
        inputs["timesteps"] = HostTensor(shape: [batch], scalars: .init(repeating: timestepValue(timestep), count: batch))
        return inputs
    }
}
