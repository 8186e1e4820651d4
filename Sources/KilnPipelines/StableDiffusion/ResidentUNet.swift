import KilnGraph
import KilnModels
import KilnSampling

/// A Stable Diffusion U-Net run one forward at a time, without guidance and with a timestep per
/// batch entry — what scoring a model on given latents needs (training losses, preference
/// scores), where the denoising loop uses `StableDiffusionPipeline`'s own denoiser. The weights
/// stay resident (`residency`, shared with the pipeline when it is the pipeline's U-Net) and the
/// prepared graphs are cached by input shape.
///
/// Shapes: sample `[B, C, h, w]`, timesteps `[B]`, conditioning `context` `[B, L, D]` and, for
/// SDXL, `text_embeds` `[B, P]` and `time_ids` `[B, 6]` -> prediction `[B, C_out, h, w]` (f32).
final class ResidentUNet {
    let component: ModelComponent<UNetConfiguration>
    let residency: ResidentWeights
    let backend: Backend
    let dtype: DType
    private lazy var graphs = PreparedGraphCache<String, any PreparedGraph>(capacity: 4, byteBudget: backend.activationBudgetBytes)

    init(_ component: ModelComponent<UNetConfiguration>, residency: ResidentWeights, backend: Backend, dtype: DType) {
        self.component = component
        self.residency = residency
        self.backend = backend
        self.dtype = dtype
    }

    var configuration: UNetConfiguration { component.configuration }

    /// The model's output for `sample` at `timesteps` (one per entry, as diffusers' U-Net takes
    /// a `[B]` tensor of them) under `conditioning`.
    func predict(sample: ShapedArray, timesteps: [Float], conditioning: [String: HostTensor]) throws -> ShapedArray {
        guard timesteps.count == sample.shape[0] else {
            throw PipelineError.failed("\(residency.label): \(timesteps.count) timesteps for a batch of \(sample.shape[0])")
        }
        var inputs = conditioning
        inputs["sample"] = sample.hostTensor()
        inputs["timesteps"] = HostTensor(shape: [timesteps.count], scalars: timesteps)
        let graph = try prepared(sampleShape: sample.shape, conditioning: conditioning)
        return ShapedArray(try graph.run(inputs)[0])
    }

    /// Peak activation bytes of one forward over `sampleShape` under conditioning of these
    /// shapes, planned as the backend would prepare it, without loading or preparing anything.
    func plannedArenaBytes(sampleShape: [Int], conditioning: [String: [Int]]) throws -> Int {
        let graph = Graph()
        let binder = WeightBinder(graph: graph, source: component.weights, dtype: dtype)
        let output = try build(graph, binder: binder, sampleShape: sampleShape, conditioning: conditioning)
        return backend.plannedArenaBytes(graph, outputs: [output])
    }

    private func prepared(sampleShape: [Int], conditioning: [String: HostTensor]) throws -> any PreparedGraph {
        let shapes = conditioning.mapValues { $0.shape.dimensions }
        let key = "\(sampleShape)" + shapes.sorted { $0.key < $1.key }.map { "\($0.key)\($0.value)" }.joined()
        return try graphs.graph(for: key) {
            let graph = Graph()
            let binder = WeightBinder(graph: graph, source: component.weights, dtype: dtype, residency: residency)
            let output = try build(graph, binder: binder, sampleShape: sampleShape, conditioning: shapes)
            return try backend.prepare(graph, outputs: [output], constants: binder.constants())
        }
    }

    private func build(_ graph: Graph, binder: WeightBinder, sampleShape: [Int], conditioning: [String: [Int]]) throws -> Tensor {
        guard let context = conditioning["context"] else { throw PipelineError.failed("\(residency.label): no text context") }
        var added: UNet2DConditionModel.AddedConditioning?
        if let embeds = conditioning["text_embeds"], let timeIDs = conditioning["time_ids"] {
            added = .init(textEmbeddings: graph.input("text_embeds", Shape(embeds), dtype: dtype),
                          timeIDs: graph.input("time_ids", Shape(timeIDs), dtype: .float32))
        }
        return try component.model(
            sample: graph.input("sample", Shape(sampleShape), dtype: dtype),
            timesteps: graph.input("timesteps", [sampleShape[0]], dtype: .float32),
            text: graph.input("context", Shape(context), dtype: dtype), added: added, weights: WeightScope(binder))
    }
}
