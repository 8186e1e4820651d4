import KilnGraph

/// FLUX's two block kinds, with diffusers' key names (FluxTransformerBlock,
/// FluxSingleTransformerBlock). Token states are `[B, L, D]`; the conditioning vector is `[B, D]`;
/// rotary tables `[Lt + Li, head_dim]` cover the joint `[text; image]` sequence.
struct FluxTransformerBlocks {
    let configuration: FluxTransformerConfiguration
    let graph: Graph

    typealias Rotary = (cos: Tensor, sin: Tensor)

    /// Double-stream block: image and text each have their own adaLN-Zero modulation, q/k
    /// RMS norms, projections and MLP, and attend jointly over `[text; image]`.
    /// `image [B, Li, D], text [B, Lt, D] -> (text, image)`.
    func doubleStream(image: Tensor, text: Tensor, conditioning: Tensor, rotary: Rotary,
                      weights: WeightScope) throws -> (text: Tensor, image: Tensor) {
        let width = configuration.innerDimension
        let (textLength, imageLength) = (text.shape[1], image.shape[1])
        let imageModulation = try modulation(conditioning, parts: 6, weights: weights("norm1"))       // 6 x [B, D]
        let textModulation = try modulation(conditioning, parts: 6, weights: weights("norm1_context"))

        // Attention: LN(x)(1 + scale) + shift per stream, then joint attention.
        let imageNormed = try graph.modulate(plainLayerNorm(image), shift: imageModulation[0], scale: imageModulation[1])  // [B, Li, D]
        let textNormed = try graph.modulate(plainLayerNorm(text), shift: textModulation[0], scale: textModulation[1])      // [B, Lt, D]
        let attention = weights("attn")
        let imageQKV = try headsQKV(imageNormed, attention, projections: ("to_q", "to_k", "to_v"), norms: ("norm_q", "norm_k"))
        let textQKV = try headsQKV(textNormed, attention, projections: ("add_q_proj", "add_k_proj", "add_v_proj"),
                                   norms: ("norm_added_q", "norm_added_k"))
        let q = try graph.rope(graph.concat([textQKV.q, imageQKV.q], axis: 2), cos: rotary.cos, sin: rotary.sin)  // [B, H, Lt + Li, Dh]
        let k = try graph.rope(graph.concat([textQKV.k, imageQKV.k], axis: 2), cos: rotary.cos, sin: rotary.sin)
        let v = try graph.concat([textQKV.v, imageQKV.v], axis: 2)
        let attended = try graph.mergeHeads(graph.attention(q, k, v))                                                   // [B, Lt + Li, D]
        let textAttended = try attention("to_add_out").linear(graph.slice(attended, axis: 1, start: 0, length: textLength), width, width)
        let imageAttended = try attention("to_out")(0).linear(graph.slice(attended, axis: 1, start: textLength, length: imageLength), width, width)

        // Gated residuals, then the modulated MLP with its own gate, per stream.
        var newImage = try graph.add(image, gated(imageAttended, imageModulation[2]))                                  // [B, Li, D]
        let imageMLPInput = try graph.modulate(plainLayerNorm(newImage), shift: imageModulation[3], scale: imageModulation[4])
        newImage = try graph.add(newImage, gated(feedForward(imageMLPInput, weights("ff")), imageModulation[5]))
        var newText = try graph.add(text, gated(textAttended, textModulation[2]))                                      // [B, Lt, D]
        let textMLPInput = try graph.modulate(plainLayerNorm(newText), shift: textModulation[3], scale: textModulation[4])
        newText = try graph.add(newText, gated(feedForward(textMLPInput, weights("ff_context")), textModulation[5]))
        return (try clampedToHalfRange(newText), newImage)
    }

    /// Single-stream block over the joint sequence: one modulation, attention and MLP in
    /// parallel from the same normalised input, their outputs concatenated into one projection.
    /// `x [B, L, D] -> [B, L, D]`.
    func singleStream(_ x: Tensor, conditioning: Tensor, rotary: Rotary, weights: WeightScope) throws -> Tensor {
        let c = configuration, width = c.innerDimension
        let modulation = try modulation(conditioning, parts: 3, weights: weights("norm"))                              // 3 x [B, D]
        let normed = try graph.modulate(plainLayerNorm(x), shift: modulation[0], scale: modulation[1])                // [B, L, D]
        let mlp = try graph.gelu(weights("proj_mlp").linear(normed, width, c.mlpDimension), approximateTanh: true)   // [B, L, 4D]
        let qkv = try headsQKV(normed, weights("attn"), projections: ("to_q", "to_k", "to_v"), norms: ("norm_q", "norm_k"))
        let q = try graph.rope(qkv.q, cos: rotary.cos, sin: rotary.sin)                                               // [B, H, L, Dh]
        let k = try graph.rope(qkv.k, cos: rotary.cos, sin: rotary.sin)
        let attended = try graph.mergeHeads(graph.attention(q, k, qkv.v))                                              // [B, L, D]
        let projected = try weights("proj_out").linear(graph.concat([attended, mlp], axis: 2), width + c.mlpDimension, width)  // [B, L, D]
        return try clampedToHalfRange(graph.add(x, gated(projected, modulation[2])))
    }

    /// diffusers clips the text stream of double blocks and the joint stream of single blocks to
    /// float16's finite range when the model runs in float16 (an overflow becomes +-65504, not inf).
    private func clampedToHalfRange(_ x: Tensor) throws -> Tensor {
        x.dtype == .float16 ? try graph.clamp(x, min: -65504, max: 65504) : x
    }

    /// adaLN-Zero's projection `linear(silu(c)) [B, parts * D]`, split into `parts` vectors `[B, D]`.
    private func modulation(_ conditioning: Tensor, parts: Int, weights: WeightScope) throws -> [Tensor] {
        let width = configuration.innerDimension
        let projected = try weights("linear").linear(graph.silu(conditioning), width, parts * width)
        return try graph.chunk(projected, parts, axis: 1)
    }

    /// LayerNorm without affine parameters (eps 1e-6), as every FLUX norm before a modulation.
    private func plainLayerNorm(_ x: Tensor) throws -> Tensor {
        try graph.layerNorm(x, weight: nil, bias: nil, epsilon: 1e-6)
    }

    /// `gate [B, D] * x [B, L, D]`.
    private func gated(_ x: Tensor, _ gate: Tensor) throws -> Tensor {
        try graph.mul(graph.reshape(gate, [gate.shape[0], 1, gate.shape[1]]), x)
    }

    /// q, k, v `[B, H, L, Dh]` from biased projections, q and k RMS-normalised per head (eps 1e-6).
    private func headsQKV(_ x: Tensor, _ attention: WeightScope, projections: (String, String, String),
                          norms: (String, String)) throws -> (q: Tensor, k: Tensor, v: Tensor) {
        let c = configuration, width = c.innerDimension
        func heads(_ name: String) throws -> Tensor { try graph.splitHeads(attention(name).linear(x, width, width), heads: c.headCount) }
        func rmsNormed(_ tensor: Tensor, _ name: String) throws -> Tensor {
            try graph.rmsNorm(tensor, weight: attention(name).weight("weight", [c.headDimension]), epsilon: 1e-6)
        }
        return (try rmsNormed(heads(projections.0), norms.0), try rmsNormed(heads(projections.1), norms.1), try heads(projections.2))
    }

    /// diffusers' FeedForward with "gelu-approximate": `D -> 4D`, tanh GELU, `4D -> D`.
    private func feedForward(_ x: Tensor, _ weights: WeightScope) throws -> Tensor {
        let width = configuration.innerDimension
        let hidden = try graph.gelu(weights("net")(0)("proj").linear(x, width, configuration.mlpDimension), approximateTanh: true)
        return try weights("net")(2).linear(hidden, configuration.mlpDimension, width)
    }
}
