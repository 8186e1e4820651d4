import KilnGraph

/// One MMDiT block (Esser et al. 2024, Fig. 2b) in diffusers' `JointTransformerBlock` layout:
/// both streams get adaLN-Zero modulation from the conditioning vector, attend jointly over
/// the concatenated `[image; context]` tokens with separate projections, and run separate MLPs.
///
/// - The last block is "context pre-only": its context stream is only normalised (adaLN
///   continuous: scale, shift) to feed keys and values; it returns no context.
/// - SD3.5 "dual attention" blocks add a second, image-only self-attention with its own
///   shift/scale/gate taken from a 9-way modulation (`SD35AdaLayerNormZeroX`).
/// - `qk_norm: "rms_norm"` normalises queries and keys per head (learned gain, eps 1e-6).
///
/// Shapes: image `[B, N, D]`, context `[B, L, D]`, SiLU(conditioning) `[B, D]`
/// -> image `[B, N, D]`, context `[B, L, D]` (nil for the last block).
struct JointTransformerBlock {
    let configuration: SD3TransformerConfiguration

    func callAsFunction(
        image x: Tensor, context: Tensor, conditioning: Tensor, contextPreOnly: Bool, dualAttention: Bool, weights: WeightScope
    ) throws -> (image: Tensor, context: Tensor?) {
        let graph = weights.graph, width = configuration.innerDimension

        // Image modulation: shift, scale, gate for attention and MLP (+ the second attention's).  [B, D] each
        let imageModulation = try graph.chunk(
            weights("norm1")("linear").linear(conditioning, width, (dualAttention ? 9 : 6) * width), dualAttention ? 9 : 6, axis: 1)
        let normalisedImage = try layerNorm(x, graph)
        let attentionInput = try graph.modulate(normalisedImage, shift: imageModulation[0], scale: imageModulation[1])

        // Context modulation: adaLN-Zero, or (last block) only scale and shift.
        let contextModulation: [Tensor]
        let contextAttentionInput: Tensor
        if contextPreOnly {
            contextModulation = try graph.chunk(weights("norm1_context")("linear").linear(conditioning, width, 2 * width), 2, axis: 1)
            contextAttentionInput = try graph.modulate(layerNorm(context, graph), shift: contextModulation[1], scale: contextModulation[0])
        } else {
            contextModulation = try graph.chunk(weights("norm1_context")("linear").linear(conditioning, width, 6 * width), 6, axis: 1)
            contextAttentionInput = try graph.modulate(layerNorm(context, graph), shift: contextModulation[0], scale: contextModulation[1])
        }

        // Joint attention over [image; context].                                   [B, N, D], [B, L, D]
        let (imageAttention, contextAttention) = try jointAttention(
            image: attentionInput, context: contextAttentionInput, contextPreOnly: contextPreOnly, weights: weights("attn"))
        var image = try graph.add(x, gated(imageAttention, imageModulation[2], graph))

        // SD3.5: a second, image-only attention on the same normalised image, modulated apart.
        if dualAttention {
            let secondInput = try graph.modulate(normalisedImage, shift: imageModulation[6], scale: imageModulation[7])
            let second = try selfAttention(secondInput, weights: weights("attn2"))
            image = try graph.add(image, gated(second, imageModulation[8], graph))
        }

        // Image MLP.                                                                             [B, N, D]
        let mlpInput = try graph.modulate(layerNorm(image, graph), shift: imageModulation[3], scale: imageModulation[4])
        image = try graph.add(image, gated(feedForward(mlpInput, weights("ff")), imageModulation[5], graph))
        if contextPreOnly { return (image, nil) }

        // Context residuals: attention, then MLP.                                                [B, L, D]
        guard let contextAttention else { throw GraphError("sd3", "block \(weights.prefix) produced no context attention output") }
        var updatedContext = try graph.add(context, gated(contextAttention, contextModulation[2], graph))
        let contextMLPInput = try graph.modulate(layerNorm(updatedContext, graph), shift: contextModulation[3], scale: contextModulation[4])
        updatedContext = try graph.add(updatedContext, gated(feedForward(contextMLPInput, weights("ff_context")), contextModulation[5], graph))
        return (image, updatedContext)
    }

    /// Separate q/k/v projections for each stream, softmax(q k^T / sqrt(d)) v over all N + L
    /// tokens, then each stream's output projection (none for the context of the last block).
    private func jointAttention(
        image: Tensor, context: Tensor, contextPreOnly: Bool, weights: WeightScope
    ) throws -> (image: Tensor, context: Tensor?) {
        let graph = weights.graph, width = configuration.innerDimension
        let imageTokens = image.shape[1]
        let imageQKV = try projections(image, weights, query: "to_q", key: "to_k", value: "to_v", queryNorm: "norm_q", keyNorm: "norm_k")
        let contextQKV = try projections(
            context, weights, query: "add_q_proj", key: "add_k_proj", value: "add_v_proj", queryNorm: "norm_added_q", keyNorm: "norm_added_k")
        let q = try graph.concat([imageQKV.q, contextQKV.q], axis: 1)                                     // [B, N+L, D]
        let k = try graph.concat([imageQKV.k, contextQKV.k], axis: 1)
        let v = try graph.concat([imageQKV.v, contextQKV.v], axis: 1)
        let attended = try graph.multiHeadAttention(q, k, v, heads: configuration.attentionHeads)         // [B, N+L, D]
        let imageOutput = try weights("to_out")(0).linear(graph.slice(attended, axis: 1, start: 0, length: imageTokens), width, width)
        if contextPreOnly { return (imageOutput, nil) }
        let contextPart = try graph.slice(attended, axis: 1, start: imageTokens, length: context.shape[1])
        return (imageOutput, try weights("to_add_out").linear(contextPart, width, width))
    }

    /// SD3.5's image-only attention (`attn2`).                                                [B, N, D]
    private func selfAttention(_ x: Tensor, weights: WeightScope) throws -> Tensor {
        let graph = weights.graph, width = configuration.innerDimension
        let (q, k, v) = try projections(x, weights, query: "to_q", key: "to_k", value: "to_v", queryNorm: "norm_q", keyNorm: "norm_k")
        return try weights("to_out")(0).linear(graph.multiHeadAttention(q, k, v, heads: configuration.attentionHeads), width, width)
    }

    /// Queries, keys and values `[B, T, D]` (H heads side by side) of `x [B, T, D]`, queries and
    /// keys RMS-normalised per head when the config asks for it.
    private func projections(
        _ x: Tensor, _ weights: WeightScope, query: String, key: String, value: String, queryNorm: String, keyNorm: String
    ) throws -> (q: Tensor, k: Tensor, v: Tensor) {
        let graph = weights.graph, width = configuration.innerDimension, heads = configuration.attentionHeads
        var q = try weights(query).linear(x, width, width)
        var k = try weights(key).linear(x, width, width)
        let v = try weights(value).linear(x, width, width)
        if configuration.qkNorm != nil {
            // Per head: the norm runs over the last dim of the [B, T, H, d] view.
            let headWidth = configuration.attentionHeadDimension
            let (batch, tokens) = (x.shape[0], x.shape[1])
            func normalised(_ t: Tensor, _ name: String) throws -> Tensor {
                let perHead = try graph.reshape(t, [batch, tokens, heads, headWidth])
                return try graph.reshape(graph.rmsNorm(perHead, weight: weights(name).weight("weight", [headWidth]), epsilon: 1e-6), [batch, tokens, width])
            }
            q = try normalised(q, queryNorm)
            k = try normalised(k, keyNorm)
        }
        return (q, k, v)
    }

    /// diffusers' `FeedForward(dim, activation_fn="gelu-approximate")`: D -> 4D, tanh GELU, -> D.
    private func feedForward(_ x: Tensor, _ weights: WeightScope) throws -> Tensor {
        let graph = weights.graph, width = configuration.innerDimension
        let hidden = try graph.gelu(weights("net")(0)("proj").linear(x, width, 4 * width), approximateTanh: true)
        return try weights("net")(2).linear(hidden, 4 * width, width)
    }

    /// `gate [B, D]` broadcast over the tokens of `x [B, T, D]`.
    private func gated(_ x: Tensor, _ gate: Tensor, _ graph: Graph) throws -> Tensor {
        try graph.mul(x, graph.reshape(gate, [gate.shape[0], 1, gate.shape[1]]))
    }

    /// LayerNorm without affine parameters, eps 1e-6 (every norm inside the block).
    private func layerNorm(_ x: Tensor, _ graph: Graph) throws -> Tensor {
        try graph.layerNorm(x, weight: nil, bias: nil, epsilon: 1e-6)
    }
}
