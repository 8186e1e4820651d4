import KilnGraph
import KilnModels
import KilnSampling

/// CLIP text encoders run as diffusers' `encode_prompt` runs them: prompts tokenized to 77 ids
/// (padded, truncated), each encoder's chosen hidden state joined on the channel axis, and one
/// encoder's pooled output kept (SDXL's and SD3's projected text embedding, FLUX's pooler output).
/// Weights stay resident; graphs are cached by batch and length.
///
/// Shapes: `encode([p_1 ... p_N])` -> context `[N, 77, D]` (D = 768 SD1, 1024 SD2, 2048 SDXL,
/// the sum of the encoders' widths) and pooled `[N, P]` where an encoder supplies it.
final class PromptEncoder {
    /// Which pooled vector an encoder supplies.
    enum Pooled {
        case none
        /// The final state at each prompt's end token (FLUX's `pooler_output`).
        case pooler
        /// That state through `text_projection` (SDXL's and SD3's `text_embeds`).
        case projected
    }

    /// One text encoder with its tokenizer and what the family reads from it.
    struct Encoder {
        let tokenizer: CLIPTokenizer
        let component: ModelComponent<CLIPTextConfiguration>
        /// SD1/SD2 and FLUX read the final (layer-normed) state, SDXL and SD3 the penultimate layer's output.
        let usesPenultimateState: Bool
        let pooled: Pooled
        /// The weights graphs bind (LoRA changes merged) and their device copies.
        let weights: AdaptedWeights
        var residency: ResidentWeights { weights.residency }
    }

    struct Embeddings {
        var context: ShapedArray
        var pooled: ShapedArray?
    }

    let encoders: [Encoder]
    let backend: Backend
    let dtype: DType
    private lazy var graphs = PreparedGraphCache<String, any PreparedGraph>(capacity: 8, byteBudget: backend.activationBudgetBytes)

    init(encoders: [Encoder], backend: Backend, dtype: DType) {
        self.encoders = encoders
        self.backend = backend
        self.dtype = dtype
    }

    /// One encoder per (tokenizer, component, penultimate, pooled), named `label` (`text_encoder`, ...).
    convenience init(
        _ parts: [(label: String, tokenizer: CLIPTokenizer, component: ModelComponent<CLIPTextConfiguration>, penultimate: Bool, pooled: Pooled)],
        backend: Backend, dtype: DType
    ) {
        self.init(encoders: parts.map {
            Encoder(tokenizer: $0.tokenizer, component: $0.component, usesPenultimateState: $0.penultimate, pooled: $0.pooled,
                    weights: AdaptedWeights(label: $0.label, base: $0.component.weights))
        }, backend: backend, dtype: dtype)
    }

    /// The width of one token's context vector.
    var contextWidth: Int { encoders.reduce(0) { $0 + $1.component.configuration.hiddenSize } }

    /// CLIP ids `[N * 77]` of `prompts` for encoder `index`, flat.
    func tokenIDs(_ prompts: [String], encoder index: Int) -> [Int32] {
        prompts.flatMap { encoders[index].tokenizer.encode($0, padding: true, truncation: true).map(Int32.init) }
    }

    func encode(_ prompts: [String]) throws -> Embeddings {
        var contexts: [ShapedArray] = []
        var pooled: ShapedArray?
        for (index, encoder) in encoders.enumerated() {
            let ids = tokenIDs(prompts, encoder: index)
            let length = ids.count / prompts.count
            let rows = CLIPTextModel.pooledRows(ids: ids, sequenceLength: length)
            let graph = try preparedGraph(encoder, index: index, batch: prompts.count, length: length)
            let outputs = try graph.run([
                "ids": HostTensor(shape: [prompts.count, length], integers: ids),
                "rows": HostTensor(shape: [rows.count], integers: rows),
            ])
            contexts.append(ShapedArray(outputs[0]))
            if encoder.pooled != .none { pooled = ShapedArray(outputs[1]) }
        }
        return Embeddings(context: Self.joinedOnLastAxis(contexts), pooled: pooled)
    }

    /// `prompts` in AUTOMATIC1111's syntax: each prompt in 77-token chunks (`A1111PromptChunks`),
    /// each chunk's states weighted (`A1111Emphasis`) and the chunks joined along the sequence;
    /// prompts with fewer chunks are padded with the empty prompt's chunk (A1111's "pad prompt
    /// and negative prompt to the same length"), so they batch together. The pooled vector is
    /// the first chunk's, unweighted, as A1111 takes it.
    ///
    /// Shapes: context `[N, 77·C, D]` for the longest prompt's C chunks, pooled `[N, P]`.
    func encodeA1111(_ prompts: [String]) throws -> Embeddings {
        let perEncoder = encoders.map { encoder in prompts.map { A1111PromptChunks($0, tokenizer: encoder.tokenizer).chunks } }
        let count = perEncoder.flatMap { $0.map(\.count) }.max() ?? 1
        var contexts: [ShapedArray] = []
        var pooled: ShapedArray?
        for (index, encoder) in encoders.enumerated() {
            let empty = A1111PromptChunks("", tokenizer: encoder.tokenizer).chunks[0]
            let chunks = perEncoder[index].flatMap { $0 + Array(repeating: empty, count: count - $0.count) }   // [N·C]
            let length = empty.ids.count
            let ids = chunks.flatMap { $0.ids.map(Int32.init) }
            let rows = CLIPTextModel.pooledRows(ids: ids, sequenceLength: length)
            let graph = try preparedGraph(encoder, index: index, batch: chunks.count, length: length)
            let outputs = try graph.run([
                "ids": HostTensor(shape: [chunks.count, length], integers: ids),
                "rows": HostTensor(shape: [rows.count], integers: rows),
            ])
            let states = ShapedArray(outputs[0])                                                    // [N·C, 77, D]
            let width = states.shape[2], size = length * width
            var weighted = [Float]()
            weighted.reserveCapacity(states.scalars.count)
            for (chunk, values) in chunks.enumerated() {
                let slice = Array(states.scalars[(chunk * size)..<((chunk + 1) * size)])
                weighted += values.weights.allSatisfy { $0 == 1 } ? slice : A1111Emphasis.apply(slice, width: width, weights: values.weights)
            }
            contexts.append(ShapedArray(shape: [prompts.count, count * length, width], scalars: weighted))
            if encoder.pooled != .none {
                let all = ShapedArray(outputs[1])                                                    // [N·C, P]
                pooled = ShapedArray.concatenated(prompts.indices.map { all.rows(($0 * count)..<($0 * count + 1)) })
            }
        }
        return Embeddings(context: Self.joinedOnLastAxis(contexts), pooled: pooled)
    }

    /// Zero embeddings shaped like `encode` returns for `count` prompts (SDXL's empty negative).
    func zeros(count: Int, like embeddings: Embeddings) -> Embeddings {
        Embeddings(
            context: ShapedArray(repeating: 0, shape: [count] + embeddings.context.shape.dropFirst()),
            pooled: embeddings.pooled.map { ShapedArray(repeating: 0, shape: [count] + $0.shape.dropFirst()) })
    }

    /// Each encoder as a component LoRAs may change (kohya names it `lora_te1_`, `lora_te2_`, ...;
    /// `kohyaPrefixes` gives each encoder's, in order).
    func loraSlots(kohyaPrefixes: [[String]]) -> [LoRAAdapters.Slot] {
        zip(encoders, kohyaPrefixes).map { encoder, prefixes in
            LoRAAdapters.Slot(
                names: .textEncoder(label: encoder.weights.label, weights: encoder.component.weights, kohyaPrefixes: prefixes),
                weights: encoder.weights)
        }
    }

    /// Every encoder's weights as the device stores them.
    func addWeights(to footprint: inout WeightFootprint) {
        for encoder in encoders { footprint.add(encoder.residency.label, encoder.component.weights, dtype: dtype) }
    }

    /// Drops the prepared graphs and the encoders' device copies (the next encode uploads again).
    func release() {
        graphs.removeAll()
        for encoder in encoders { encoder.residency.release() }
    }

    private func preparedGraph(_ encoder: Encoder, index: Int, batch: Int, length: Int) throws -> any PreparedGraph {
        try graphs.graph(for: "\(index)-\(batch)-\(length)") {
            let graph = Graph()
            let binder = WeightBinder(graph: graph, source: encoder.weights.current, dtype: dtype, residency: encoder.residency)
            let ids = graph.input("ids", [batch, length], dtype: .int32)
            let rows = graph.input("rows", [batch], dtype: .int32)
            let outputs = try encoder.component.model(ids: ids, pooledRows: rows, weights: WeightScope(binder))
            var results = [encoder.usesPenultimateState ? outputs.hiddenState(skippingLast: 1) : outputs.lastHiddenState]
            switch encoder.pooled {
            case .none: break
            case .pooler: results.append(outputs.pooled)
            case .projected:
                guard let projected = outputs.textEmbeddings else {
                    throw PipelineError.invalidModel("\(encoder.residency.label) has no text_projection (projection_dim) for the pooled text embedding")
                }
                results.append(projected)
            }
            return try backend.prepare(graph, outputs: results, constants: binder.constants())
        }
    }

    /// `torch.cat(parts, dim=-1)` for `[N, L, D_i]` parts.
    static func joinedOnLastAxis(_ parts: [ShapedArray]) -> ShapedArray {
        guard parts.count > 1, let first = parts.first, let firstWidth = first.shape.last else { return parts[0] }
        let rows = first.scalars.count / firstWidth
        var scalars = [Float]()
        scalars.reserveCapacity(parts.reduce(0) { $0 + $1.scalars.count })
        for row in 0..<rows {
            for part in parts {
                let width = part.shape[part.shape.count - 1]
                scalars += part.scalars[(row * width)..<((row + 1) * width)]
            }
        }
        let width = parts.reduce(0) { $0 + $1.shape[$1.shape.count - 1] }
        return ShapedArray(shape: first.shape.dropLast() + [width], scalars: scalars)
    }
}
