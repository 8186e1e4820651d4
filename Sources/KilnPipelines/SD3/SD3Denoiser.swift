import KilnGraph
import KilnModels
import KilnSampling

/// The SD3 transformer prepared once for one batch, latent size and text length, then run every
/// step with new inputs (weights uploaded once).
///
/// Shapes: latents `[M, 16, h, w]`, one timestep (σ x 1000) shared by the batch, context
/// `[M, 77 + S, joint]`, pooled `[M, P]` -> velocity `[M, 16, h, w]` (f32 on the host).
final class SD3Denoiser {
    private let graph: any PreparedGraph

    init(
        transformer: StableDiffusionCheckpoint.Component<SD3TransformerConfiguration>, sampleShape: [Int], contextShape: [Int],
        pooledWidth: Int, backend: Backend, dtype: DType
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
        let velocity = try model(
            hiddenStates: latents, encoderHiddenStates: context, pooledProjections: pooled, timesteps: timesteps, weights: WeightScope(binder))
        self.graph = try backend.prepare(graph, outputs: [velocity], constants: binder.constants())
    }

    func predict(_ latents: ShapedArray, timestep: Double, context: ShapedArray, pooled: ShapedArray) throws -> ShapedArray {
        let batch = latents.shape[0]
        return ShapedArray(try graph.run([
            "latents": latents.hostTensor(),
            "timesteps": HostTensor(shape: [batch], scalars: .init(repeating: Float(timestep), count: batch)),
            "context": context.hostTensor(),
            "pooled": pooled.hostTensor(),
        ])[0])
    }
}
