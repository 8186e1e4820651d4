import KilnGraph
import KilnModels
import KilnSampling

/// The text conditioning of a Stable Diffusion family, computed as diffusers' `encode_prompt`:
/// prompts are tokenized to 77 ids (padded, truncated), run through the text encoder(s), and
/// for SDXL the two encoders' penultimate hidden states are joined and the second encoder's
/// projected pooled output is kept.
///
/// Shapes: `encode([p_1 ... p_N])` -> context `[N, 77, D]` (D = 768 SD1, 1024 SD2, 2048 SDXL)
/// and, for SDXL, pooled `[N, 1280]`.
final class PromptEncoder {
    /// One text encoder with its tokenizer and which hidden state the family reads.
    struct Encoder {
        let tokenizer: CLIPTokenizer
        let component: StableDiffusionCheckpoint.Component<CLIPTextConfiguration>
        /// SD1/SD2 read the final (layer-normed) state, SDXL the penultimate layer's output.
        let usesPenultimateState: Bool
        /// SDXL's second encoder supplies the pooled, projected embedding.
        let suppliesPooled: Bool
    }

    struct Embeddings {
        var context: ShapedArray
        var pooled: ShapedArray?
    }

    let encoders: [Encoder]
    let backend: Backend
    let dtype: DType
    private var prepared: [String: any PreparedGraph] = [:]

    init(encoders: [Encoder], backend: Backend, dtype: DType) {
        self.encoders = encoders
        self.backend = backend
        self.dtype = dtype
    }

    /// The width of one token's context vector.
    var contextWidth: Int { encoders.reduce(0) { $0 + $1.component.configuration.hiddenSize } }

    func encode(_ prompts: [String]) throws -> Embeddings {
        var contexts: [ShapedArray] = []
        var pooled: ShapedArray?
        for (index, encoder) in encoders.enumerated() {
            let ids = prompts.flatMap { encoder.tokenizer.encode($0, padding: true, truncation: true).map(Int32.init) }
            let length = ids.count / prompts.count
            let rows = CLIPTextModel.pooledRows(ids: ids, sequenceLength: length)
            let graph = try preparedGraph(encoder, index: index, batch: prompts.count, length: length)
            let outputs = try graph.run([
                "ids": HostTensor(shape: [prompts.count, length], integers: ids),
                "rows": HostTensor(shape: [rows.count], integers: rows),
            ])
            contexts.append(ShapedArray(outputs[0]))
            if encoder.suppliesPooled { pooled = ShapedArray(outputs[1]) }
        }
        return Embeddings(context: Self.joinedOnLastAxis(contexts), pooled: pooled)
    }

    /// Zero embeddings shaped like `encode` returns for `count` prompts (SDXL's empty negative).
    func zeros(count: Int, like embeddings: Embeddings) -> Embeddings {
        let perPrompt = embeddings.context.shape.dropFirst()
        return Embeddings(
            context: ShapedArray(repeating: 0, shape: [count] + perPrompt),
            pooled: embeddings.pooled.map { ShapedArray(repeating: 0, shape: [count] + $0.shape.dropFirst()) })
    }

    private func preparedGraph(_ encoder: Encoder, index: Int, batch: Int, length: Int) throws -> any PreparedGraph {
        let key = "\(index)-\(batch)-\(length)"
        if let graph = prepared[key] { return graph }
        let graph = Graph()
        let binder = WeightBinder(graph: graph, source: encoder.component.weights, dtype: dtype)
        let ids = graph.input("ids", [batch, length], dtype: .int32)
        let rows = graph.input("rows", [batch], dtype: .int32)
        let outputs = try encoder.component.model(ids: ids, pooledRows: rows, weights: WeightScope(binder))
        var results = [encoder.usesPenultimateState ? outputs.hiddenState(skippingLast: 1) : outputs.lastHiddenState]
        if encoder.suppliesPooled {
            guard let projected = outputs.textEmbeddings else {
                throw PipelineError.unsupported("the second text encoder has no text_projection (projection_dim) for SDXL's pooled embedding")
            }
            results.append(projected)
        }
        let ready = try backend.prepare(graph, outputs: results, constants: binder.constants())
        prepared[key] = ready
        return ready
    }

    /// `torch.cat(parts, dim=-1)` for `[N, L, D_i]` parts.
    static func joinedOnLastAxis(_ parts: [ShapedArray]) -> ShapedArray {
        guard parts.count > 1 else { return parts[0] }
        let rows = parts[0].scalars.count / parts[0].shape.last!
        var scalars = [Float]()
        scalars.reserveCapacity(parts.reduce(0) { $0 + $1.scalars.count })
        for row in 0..<rows {
            for part in parts {
                let width = part.shape.last!
                scalars += part.scalars[(row * width)..<((row + 1) * width)]
            }
        }
        let width = parts.reduce(0) { $0 + $1.shape.last! }
        return ShapedArray(shape: parts[0].shape.dropLast() + [width], scalars: scalars)
    }
}
