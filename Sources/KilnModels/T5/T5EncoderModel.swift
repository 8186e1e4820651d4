import KilnGraph

/// T5's encoder (Raffel et al. 2020, https://arxiv.org/abs/1910.10683) as SD3/SD3.5
/// (text_encoder_3) and FLUX (text_encoder_2) call transformers' T5EncoderModel:
/// `text_encoder(ids)[0]`, no attention mask. Token embeddings, then pre-norm blocks of
/// self-attention with a learned relative position bias (computed once in block 0, shared by
/// every block) and a feed-forward block, then a final norm. Norms are RMS norms without a mean
/// (T5LayerNorm); no linear has a bias; attention scores are not scaled by `1/sqrt(d_kv)`.
///
/// Shapes: ids `[B, L]` (int32), relative position buckets `[L, L]` (int32, from
/// `relativePositionBuckets(length:)`) -> last hidden state `[B, L, d_model]`, stored in the
/// weights' type.
///
/// Precision with float16 (or bfloat16) weights: real T5 v1.1 activations pass float16's range
/// (transformers clamps them in float16 and keeps every `wo` in float32). Here the residual
/// stream, every norm and every `wo` product stay float32 (casts around the float16 matmuls and
/// attention), so nothing is clamped and values past 65504 survive; the attention and the
/// feed-forward inner product run in the weights' type, as in transformers' float16 model.
public struct T5EncoderModel: Sendable {
    public let configuration: T5Configuration

    public init(configuration: T5Configuration) {
        self.configuration = configuration
    }

    /// The `[L, L]` bucket ids the encoder's `relativePositionBuckets` input takes for `length` tokens.
    public func relativePositionBuckets(length: Int) -> HostTensor {
        T5RelativePositionBuckets(configuration).table(length: length)
    }

    /// Key of the token embedding table: `shared.weight`, or `encoder.embed_tokens.weight`
    /// where a checkpoint kept only the tied copy.
    public static func embeddingKey(in weights: WeightScope) -> String {
        weights.has("shared.weight") || !weights.has("encoder.embed_tokens.weight") ? "shared" : "encoder.embed_tokens"
    }

    /// Builds the encoder: ids `[B, L]`, relative position buckets `[L, L]` -> `[B, L, d_model]`.
    public func callAsFunction(ids: Tensor, relativePositionBuckets buckets: Tensor, weights: WeightScope) throws -> Tensor {
        let c = configuration
        let graph = weights.graph
        guard ids.shape.rank == 2, ids.dtype == .int32 else {
            throw GraphError("t5", "ids must be int32 [B, L], got \(ids.dtype.shortName) \(ids.shape)")
        }
        let length = ids.shape[1]
        guard length > 0, buckets.shape == [length, length], buckets.dtype == .int32 else {
            throw GraphError("t5", "relative position buckets must be int32 [\(length), \(length)] for \(length) tokens, got \(buckets.dtype.shortName) \(buckets.shape)")
        }
        let encoder = weights("encoder")
        let table = try weights(Self.embeddingKey(in: weights)).weight("weight", [c.vocabularySize, c.modelWidth])
        var hidden = try graph.cast(graph.embedding(table, ids: ids), to: .float32)                               // [B, L, D] f32
        let biasTable = try encoder("block")(0)("layer")(0)("SelfAttention")("relative_attention_bias")
            .weight("weight", [c.relativeAttentionBucketCount, c.headCount])                                       // [buckets, H]
        let gathered = try graph.embedding(biasTable, ids: buckets)                                                // [L, L, H]
        let positionBias = try graph.reshape(graph.permute(gathered, [2, 0, 1]), [1, c.headCount, length, length]) // [1, H, L, L]
        for index in 0..<c.layerCount {
            let block = encoder("block")(index)("layer")
            hidden = try graph.add(hidden, selfAttention(hidden, positionBias: positionBias, block(0)))          // [B, L, D]
            hidden = try graph.add(hidden, feedForward(hidden, block(1)))                                        // [B, L, D]
        }
        let normed = try norm(hidden, encoder("final_layer_norm"))                                                 // [B, L, D] f32
        return try graph.cast(normed, to: weights.binder.dtype)                                                    // [B, L, D]
    }

    /// T5LayerNorm on the float32 stream: `x / sqrt(mean(x^2) + eps) * weight`, no mean, no bias.
    private func norm(_ x: Tensor, _ scope: WeightScope) throws -> Tensor {
        let weight = try scope.graph.cast(scope.weight("weight", [configuration.modelWidth]), to: .float32)
        return try scope.graph.rmsNorm(x, weight: weight, epsilon: configuration.layerNormEpsilon)
    }

    /// `o(attention(q, k, v) + position bias)` of the normed stream, returned as float32 `[B, L, D]`.
    private func selfAttention(_ x: Tensor, positionBias: Tensor, _ layer: WeightScope) throws -> Tensor {
        let c = configuration
        let graph = layer.graph
        let inner = c.headCount * c.headWidth
        let normed = try graph.cast(norm(x, layer("layer_norm")), to: layer.binder.dtype)                         // [B, L, D]
        let attention = layer("SelfAttention")
        let q = try attention("q").linear(normed, c.modelWidth, inner, bias: false)                                  // [B, L, H d_kv]
        let k = try attention("k").linear(normed, c.modelWidth, inner, bias: false)                                  // [B, L, H d_kv]
        let v = try attention("v").linear(normed, c.modelWidth, inner, bias: false)                                  // [B, L, H d_kv]
        let attended = try graph.multiHeadAttention(q, k, v, heads: c.headCount, scale: 1, bias: positionBias)      // [B, L, H d_kv]
        let output = try attention("o").linear(attended, inner, c.modelWidth, bias: false)                         // [B, L, D]
        return try graph.cast(output, to: .float32)
    }

    /// `wo(act(wi_0 x) * wi_1 x)` (gated) or `wo(act(wi x))` of the normed stream, as float32 `[B, L, D]`.
    private func feedForward(_ x: Tensor, _ layer: WeightScope) throws -> Tensor {
        let c = configuration
        let graph = layer.graph
        let normed = try graph.cast(norm(x, layer("layer_norm")), to: layer.binder.dtype)                         // [B, L, D]
        let dense = layer("DenseReluDense")
        let hidden: Tensor
        if c.isGated {
            let gate = try activation(dense("wi_0").linear(normed, c.modelWidth, c.feedForwardWidth, bias: false), graph) // [B, L, F]
            let linear = try dense("wi_1").linear(normed, c.modelWidth, c.feedForwardWidth, bias: false)                // [B, L, F]
            hidden = try graph.mul(gate, linear)                                                                          // [B, L, F]
        } else {
            hidden = try activation(dense("wi").linear(normed, c.modelWidth, c.feedForwardWidth, bias: false), graph)   // [B, L, F]
        }
        // transformers keeps `wo` in float32 because this product passes float16's range in T5 v1.1.
        let outputWeight = try graph.cast(dense("wo").weight("weight", [c.modelWidth, c.feedForwardWidth]), to: .float32)
        return try graph.linear(graph.cast(hidden, to: .float32), weight: outputWeight, bias: nil)                       // [B, L, D] f32
    }

    private func activation(_ x: Tensor, _ graph: Graph) throws -> Tensor {
        configuration.activation == "relu" ? try graph.clamp(x, min: 0, max: .infinity) : try graph.activation(configuration.activation, x)
    }
}
