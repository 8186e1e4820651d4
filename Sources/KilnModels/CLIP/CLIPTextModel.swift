import KilnGraph

/// CLIP's text transformer (Radford et al. 2021, https://arxiv.org/abs/2103.00020) as Stable
/// Diffusion uses it: token + position embeddings, pre-LayerNorm blocks with causal
/// self-attention, a final LayerNorm, the pooled state at each prompt's EOS token, and for
/// CLIPTextModelWithProjection a bias-free `text_projection`.
///
/// Shapes: ids `[B, L]` (int32) -> last hidden state `[B, L, D]`, pooled `[B, D]`,
/// projected text embeddings `[B, P]`.
public struct CLIPTextModel: Sendable {
    public let configuration: CLIPTextConfiguration
    /// Key prefix of the transformer: `text_model.` in most checkpoints; recent transformers
    /// versions also save it without one.
    public let prefix: String

    /// The outputs diffusers reads: every hidden state (index 0 is the embeddings, index i the
    /// output of block i), the final normalised state, the pooled state and its projection.
    public struct Outputs: Sendable {
        public let hiddenStates: [Tensor]
        public let lastHiddenState: Tensor
        public let pooled: Tensor
        public let textEmbeddings: Tensor?

        /// `hidden_states[-(skip + 1)]`: skip 1 is the penultimate layer SDXL uses.
        public func hiddenState(skippingLast skip: Int) -> Tensor { hiddenStates[hiddenStates.count - 1 - skip] }
    }

    public init(configuration: CLIPTextConfiguration, prefix: String) {
        self.configuration = configuration
        self.prefix = prefix
    }

    /// Picks the key prefix the checkpoint uses (`text_model.` or none).
    public static func detectPrefix(in source: TensorSource) -> String {
        source.shape(of: "text_model.embeddings.token_embedding.weight") != nil ? "text_model." : ""
    }

    /// Row of each prompt's pooled token in the flattened `[B * L]` hidden states, for ids `[B, L]`
    /// given flat: the first occurrence of the largest id (EOS is CLIP's largest id), as
    /// transformers' argmax picks it.
    public static func pooledRows(ids: [Int32], sequenceLength: Int) -> [Int32] {
        stride(from: 0, to: ids.count, by: sequenceLength).map { start in
            let row = ids[start..<min(start + sequenceLength, ids.count)]
            let maximum = row.max() ?? 0
            return Int32(row.firstIndex(of: maximum) ?? start)
        }
    }

    /// Builds the encoder. `ids` `[B, L]` int32; `pooledRows` `[B]` int32 from `pooledRows(ids:)`.
    public func callAsFunction(ids: Tensor, pooledRows: Tensor, weights: WeightScope) throws -> Outputs {
        let c = configuration
        let graph = weights.graph
        let (batch, length, width) = (ids.shape[0], ids.shape[1], c.hiddenSize)
        guard length <= c.maxPositionEmbeddings else {
            throw GraphError("clip", "\(length) tokens exceed max_position_embeddings \(c.maxPositionEmbeddings)")
        }
        let scope = WeightScope(weights.binder, prefix: weights.prefix + prefix)
        let embeddings = scope("embeddings")
        let tokens = try graph.embedding(embeddings("token_embedding").weight("weight", [c.vocabularySize, width]), ids: ids)  // [B, L, D]
        let positionTable = try embeddings("position_embedding").weight("weight", [c.maxPositionEmbeddings, width])
        let positions = try graph.slice(positionTable, axis: 0, start: 0, length: length)                                 // [L, D]
        var hidden = try graph.add(tokens, positions)                                                                       // [B, L, D]
        var hiddenStates = [hidden]
        for index in 0..<c.layerCount {
            hidden = try encoderLayer(hidden, scope("encoder")("layers")(index))
            hiddenStates.append(hidden)
        }
        let last = try scope("final_layer_norm").layerNorm(hidden, width, epsilon: c.layerNormEpsilon)                    // [B, L, D]
        let pooled = try graph.embedding(graph.reshape(last, [batch * length, width]), ids: pooledRows)                     // [B, D]
        var projected: Tensor?
        if c.hasProjection, let projection = c.projectionSize {
            projected = try weights("text_projection").linear(pooled, width, projection, bias: false)                       // [B, P]
        }
        return Outputs(hiddenStates: hiddenStates, lastHiddenState: last, pooled: pooled, textEmbeddings: projected)
    }

    /// One pre-LN block: `x + attn(ln1(x))`, then `h + mlp(ln2(h))`.
    private func encoderLayer(_ x: Tensor, _ layer: WeightScope) throws -> Tensor {
        let c = configuration
        let graph = layer.graph
        let width = c.hiddenSize
        let normed = try layer("layer_norm1").layerNorm(x, width, epsilon: c.layerNormEpsilon)
        let attention = layer("self_attn")
        let q = try attention("q_proj").linear(normed, width, width)                                                   // [B, L, D]
        let k = try attention("k_proj").linear(normed, width, width)
        let v = try attention("v_proj").linear(normed, width, width)
        let attended = try graph.multiHeadAttention(q, k, v, heads: c.headCount, causal: true)                         // [B, L, D]
        let residual = try graph.add(x, attention("out_proj").linear(attended, width, width))
        let normed2 = try layer("layer_norm2").layerNorm(residual, width, epsilon: c.layerNormEpsilon)
        let mlp = layer("mlp")
        let inner = try graph.activation(c.activation, mlp("fc1").linear(normed2, width, c.intermediateSize))         // [B, L, I]
        return try graph.add(residual, mlp("fc2").linear(inner, c.intermediateSize, width))
    }
}
