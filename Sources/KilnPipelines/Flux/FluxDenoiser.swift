import KilnGraph
import KilnModels
import KilnSampling

/// The FLUX transformer prepared once for one batch, image token count and text length, then
/// run every step with new inputs (weights are uploaded once, in the pipeline's storage type).
///
/// Shapes: packed latents `[B, Li, 4C]`, text states `[B, Lt, joint_dim]`, pooled `[B, P]`, one
/// timestep (σ, in [0, 1]) and for FLUX.1-dev one guidance scale shared by the batch ->
/// velocity `[B, Li, 4C]` (f32 on the host), or, with a device step, the next packed latents.
final class FluxDenoiser {
    let model: FluxTransformer2DModel
    let batch: Int
    let imageLength: Int
    let textLength: Int
    private let graph: any PreparedGraph
    private let rotary: (cos: HostTensor, sin: HostTensor)

    /// With `deviceStep` the graph ends in the scheduler step (FLUX has no unconditional branch):
    /// use `step`, not `predict`.
    init(model: FluxTransformer2DModel, weights: TensorSource, batch: Int, patchRows: Int, patchColumns: Int, textLength: Int,
         backend: Backend, dtype: DType, deviceStep: DeviceStep? = nil) throws {
        let c = model.configuration
        self.model = model
        self.batch = batch
        self.imageLength = patchRows * patchColumns
        self.textLength = textLength
        rotary = try model.rotaryEmbedding.tables(
            textIDs: FluxLatents.textIDs(length: textLength).hostTensor(),
            imageIDs: FluxLatents.imageIDs(patchRows: patchRows, patchColumns: patchColumns).hostTensor())
        let graph = Graph()
        let binder = WeightBinder(graph: graph, source: weights, dtype: dtype)
        let hidden = graph.input("hidden_states", [batch, imageLength, c.inChannels], dtype: dtype)
        let text = graph.input("encoder_hidden_states", [batch, textLength, c.jointAttentionDimension], dtype: dtype)
        let pooled = graph.input("pooled_projections", [batch, c.pooledProjectionDimension], dtype: dtype)
        // Timesteps and guidance stay f32: σ·1000 must not round to f16 before its sinusoid.
        let timesteps = graph.input("timesteps", [batch], dtype: .float32)
        let guidance = c.guidanceEmbeds ? graph.input("guidance", [batch], dtype: .float32) : nil
        var result = try model(
            hiddenStates: hidden, encoderHiddenStates: text, pooledProjections: pooled, timesteps: timesteps, guidance: guidance,
            rotaryCos: graph.input("rotary_cos", rotary.cos.shape), rotarySin: graph.input("rotary_sin", rotary.sin.shape),
            weights: WeightScope(binder))
        if let deviceStep { result = try deviceStep.appended(to: graph, prediction: result) }
        self.graph = try backend.prepare(graph, outputs: [result], constants: binder.constants())
    }

    /// Text conditioning that stays the same through the loop.
    struct Conditioning {
        /// `[B, Lt, joint_dim]`.
        var textStates: ShapedArray
        /// `[B, P]`.
        var pooled: ShapedArray
        /// FLUX.1-dev's embedded guidance scale; nil for schnell.
        var guidance: Float?
    }

    /// The velocity at `sigma` (FluxPipeline passes `timestep / 1000`, computed in f32).
    func predict(_ latents: ShapedArray, sigma: Float, conditioning: Conditioning) throws -> ShapedArray {
        ShapedArray(try graph.run(try inputs(latents, sigma: sigma, conditioning: conditioning))[0])
    }

    /// The packed latents after one step from `latents` (prepared with a device step).
    func step(_ latents: ShapedArray, sigma: Float, step: AffineStep, conditioning: Conditioning) throws -> ShapedArray {
        try DeviceStep.run(graph, inputs: inputs(latents, sigma: sigma, conditioning: conditioning), latents: latents, step: step,
                           guidanceScale: 1)
    }

    private func inputs(_ latents: ShapedArray, sigma: Float, conditioning: Conditioning) throws -> [String: HostTensor] {
        var inputs: [String: HostTensor] = [
            "hidden_states": latents.hostTensor(),
            "encoder_hidden_states": conditioning.textStates.hostTensor(),
            "pooled_projections": conditioning.pooled.hostTensor(),
            "timesteps": HostTensor(shape: [batch], scalars: .init(repeating: sigma, count: batch)),
            "rotary_cos": rotary.cos, "rotary_sin": rotary.sin,
        ]
        if model.configuration.guidanceEmbeds {
            guard let guidance = conditioning.guidance else {
                throw FluxPipelineError.invalidRequest("this transformer embeds guidance (FLUX.1-dev): a guidance scale is required")
            }
            inputs["guidance"] = HostTensor(shape: [batch], scalars: .init(repeating: guidance, count: batch))
        }
        return inputs
    }
}
