import KilnGraph
import KilnModels
import KilnSampling

/// The SD3 transformer prepared once for one batch, latent size and text length, then run every
/// step with new inputs (weights uploaded once).
///
/// Shapes: latents `[M, 16, h, w]`, one timestep (σ x 1000) shared by the batch, context
/// `[M, 77 + S, joint]`, pooled `[M, P]` -> velocity `[M, 16, h, w]` (f32 on the host), or, with a
/// device step, the next latents `[N, 16, h, w]` (M = 2N under guidance, else N).
final class SD3Denoiser {
    private let graph: any PreparedGraph

    /// With `deviceStep` the graph ends in guidance and the scheduler step: use `step`, not `predict`.
    init(
        transformer: StableDiffusionCheckpoint.Component<SD3TransformerConfiguration>, sampleShape: [Int], contextShape: [Int],
        pooledWidth: Int, backend: Backend, dtype: DType, deviceStep: DeviceStep? = nil
    ) throws {
        let batch = sampleShape[0]
        let graph = Graph()
        let binder = WeightBinder(graph: graph, source: transformer.weights, dtype: dtype)
        let latents = graph.input("latents", Shape(sampleShape), dtype: dtype)
        // σ x 1000 is fractional: it must not round to f16 before the sinusoids.
        let timesteps = graph.input("timesteps", [batch], dtype: .float32)
        let context = graph.input("context", Shape(contextShape), dtype: dtype)
        let pooled = graph.input("pooled", [batch, pooledWidth], dtype: dtype)
        let model = SD3Transformer2DModel(configuration: transformer.configuration)
        var result = try model(
            hiddenStates: latents, encoderHiddenStates: context, pooledProjections: pooled, timesteps: timesteps, weights: WeightScope(binder))
        if let deviceStep { result = try deviceStep.appended(to: graph, prediction: result) }
        self.graph = try backend.prepare(graph, outputs: [result], constants: binder.constants())
    }

    /// The velocity for model input `latents` (prepared without a device step).
    func predict(_ latents: ShapedArray, timestep: Double, context: ShapedArray, pooled: ShapedArray) throws -> ShapedArray {
        ShapedArray(try graph.run(Self.inputs(latents, timestep: timestep, context: context, pooled: pooled))[0])
    }

    /// The latents after one step from `sample` (prepared with a device step): the transformer on
    /// model input `latents`, guidance at `guidanceScale`, then `step`.
    func step(
        _ latents: ShapedArray, sample: ShapedArray, timestep: Double, step: AffineStep, guidanceScale: Float, context: ShapedArray,
        pooled: ShapedArray
    ) throws -> ShapedArray {
        try DeviceStep.run(graph, inputs: Self.inputs(latents, timestep: timestep, context: context, pooled: pooled), latents: sample,
                           step: step, guidanceScale: guidanceScale)
    }

    private static func inputs(_ latents: ShapedArray, timestep: Double, context: ShapedArray, pooled: ShapedArray) -> [String: HostTensor] {
        let batch = latents.shape[0]
        return [
            "latents": latents.hostTensor(),
            "timesteps": HostTensor(shape: [batch], scalars: .init(repeating: Float(timestep), count: batch)),
            "context": context.hostTensor(),
            "pooled": pooled.hostTensor(),
        ]
    }
}
