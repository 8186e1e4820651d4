import KilnGraph
import KilnModels
import KilnSampling

/// The U-Net prepared once for one batch and latent size, then run every step with new inputs
/// (the executor replays the recorded command buffer; weights were uploaded once).
///
/// Shapes: sample `[M, C_in, h, w]` (C_in = 4, or 9 for inpainting U-Nets), one timestep shared
/// by the batch, context `[M, 77, D]`, SDXL's pooled text `[M, P]` and time ids `[M, 6]`,
/// an LCM-distilled U-Net's guidance embedding `[M, time_cond_proj_dim]` ->
/// prediction `[M, 4, h, w]` (f32 on the host), or, with a guided step, the next latents
/// `[N, 4, h, w]` (M = 2N under guidance, else N).
final class Denoiser {
    let model: UNet2DConditionModel
    let sampleShape: [Int]
    private let graph: any PreparedGraph
    private let usesAddedConditioning: Bool

    /// With `deviceStep` the graph ends in guidance and the scheduler step: use `step`, not `predict`.
    init(
        unet: StableDiffusionCheckpoint.Component<UNetConfiguration>, sampleShape: [Int], contextShape: [Int],
        pooledWidth: Int?, backend: Backend, dtype: DType, deviceStep: DeviceStep? = nil
    ) throws {
        model = unet.model
        self.sampleShape = sampleShape
        let batch = sampleShape[0]
        let graph = Graph()
        let binder = WeightBinder(graph: graph, source: unet.weights, dtype: dtype)
        let sample = graph.input("sample", Shape(sampleShape), dtype: dtype)
        // Fractional sigma-space timesteps (Euler, Heun, DPM++ Karras) must not round to f16.
        let timesteps = graph.input("timesteps", [batch], dtype: .float32)
        let context = graph.input("context", Shape(contextShape), dtype: dtype)
        var added: UNet2DConditionModel.AddedConditioning?
        if let pooledWidth {
            added = .init(
                textEmbeddings: graph.input("text_embeds", [batch, pooledWidth], dtype: dtype),
                timeIDs: graph.input("time_ids", [batch, 6], dtype: .float32))
        }
        usesAddedConditioning = added != nil
        let condition = unet.configuration.timestepConditionDimension.map { graph.input("timestep_cond", [batch, $0], dtype: dtype) }
        var result = try model(
            sample: sample, timesteps: timesteps, text: context, added: added, timestepCondition: condition, weights: WeightScope(binder))
        if let deviceStep { result = try deviceStep.appended(to: graph, prediction: result) }
        self.graph = try backend.prepare(graph, outputs: [result], constants: binder.constants())
    }

    /// Conditioning that stays the same through the loop.
    struct Conditioning {
        var context: ShapedArray
        var pooled: ShapedArray?
        var timeIDs: ShapedArray?
        /// LCM-distilled U-Nets: the guidance-scale embedding `[M, time_cond_proj_dim]`.
        var timestepCondition: ShapedArray?
    }

    /// The prediction for model input `sample` (prepared without a device step).
    func predict(_ sample: ShapedArray, timestep: Double, conditioning: Conditioning) throws -> ShapedArray {
        ShapedArray(try graph.run(inputs(sample, timestep: timestep, conditioning: conditioning))[0])
    }

    /// The latents after one step from `latents` (prepared with a device step): the U-Net on model
    /// input `sample`, guidance at `guidanceScale`, then `step`.
    func step(
        _ sample: ShapedArray, latents: ShapedArray, timestep: Double, step: AffineStep, guidanceScale: Float, conditioning: Conditioning
    ) throws -> ShapedArray {
        try DeviceStep.run(graph, inputs: inputs(sample, timestep: timestep, conditioning: conditioning), latents: latents, step: step,
                           guidanceScale: guidanceScale)
    }

    private func inputs(_ sample: ShapedArray, timestep: Double, conditioning: Conditioning) -> [String: HostTensor] {
        var inputs: [String: HostTensor] = [
            "sample": sample.hostTensor(),
            "timesteps": HostTensor(shape: [sample.shape[0]], scalars: .init(repeating: Float(timestep), count: sample.shape[0])),
            "context": conditioning.context.hostTensor(),
        ]
        if usesAddedConditioning, let pooled = conditioning.pooled, let timeIDs = conditioning.timeIDs {
            inputs["text_embeds"] = pooled.hostTensor()
            inputs["time_ids"] = timeIDs.hostTensor()
        }
        if let condition = conditioning.timestepCondition { inputs["timestep_cond"] = condition.hostTensor() }
        return inputs
    }
}
