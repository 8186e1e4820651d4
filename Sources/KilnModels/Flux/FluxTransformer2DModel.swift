import KilnGraph

/// FLUX.1's rectified-flow transformer (Black Forest Labs 2024,
/// https://blackforestlabs.ai/announcing-black-forest-labs/; MM-DiT of Esser et al. 2024,
/// https://arxiv.org/abs/2403.03206) with diffusers' FluxTransformer2DModel key names.
///
/// Text and image tokens first pass double-stream blocks (each stream with its own weights,
/// attending jointly over `[text; image]`), then single-stream blocks over the concatenated
/// sequence; every block is modulated by one conditioning vector, the sum of the timestep's,
/// the guidance scale's (FLUX.1-dev) and the pooled CLIP embedding's projections.
///
/// Shapes: hidden states (packed 2x2 latent patches) `[B, Li, in_channels]`, text states
/// `[B, Lt, joint_attention_dim]`, pooled `[B, pooled_projection_dim]`, timesteps `[B]` (sigmas in
/// [0, 1]), guidance `[B]` (dev only), rotary tables `[Lt + Li, head_dim]` from
/// `FluxRotaryEmbedding` -> `[B, Li, patch^2 * out_channels]`.
///
/// Precision: activations take the hidden states' type; timesteps and guidance are read in
/// whatever type they are given (f32 keeps fractional sigmas exact) before their sinusoids are
/// cast to the activations' type, as diffusers does.
public struct FluxTransformer2DModel: Sendable {
    public let configuration: FluxTransformerConfiguration

    public init(configuration: FluxTransformerConfiguration) {
        self.configuration = configuration
    }

    /// The rotary embedding this configuration's heads use.
    public var rotaryEmbedding: FluxRotaryEmbedding { FluxRotaryEmbedding(axesDimensions: configuration.axesDimensionsRope) }

    public func callAsFunction(
        hiddenStates: Tensor, encoderHiddenStates: Tensor, pooledProjections: Tensor, timesteps: Tensor,
        guidance: Tensor? = nil, rotaryCos: Tensor, rotarySin: Tensor, weights: WeightScope
    ) throws -> Tensor {
        let c = configuration, graph = weights.graph
        let width = c.innerDimension
        let (imageLength, textLength) = (hiddenStates.shape[1], encoderHiddenStates.shape[1])
        try checkInputs(hiddenStates, encoderHiddenStates, pooledProjections, timesteps, guidance, rotaryCos, rotarySin)
        let activations = hiddenStates.dtype
        let rotary = (cos: try graph.cast(rotaryCos, to: activations), sin: try graph.cast(rotarySin, to: activations))

        var image = try weights("x_embedder").linear(hiddenStates, c.inChannels, width)                              // [B, Li, D]
        let conditioning = try conditioningEmbedding(timesteps: timesteps, guidance: guidance, pooled: pooledProjections,
                                                     activations: activations, weights: weights("time_text_embed"))  // [B, D]
        var text = try weights("context_embedder").linear(encoderHiddenStates, c.jointAttentionDimension, width)     // [B, Lt, D]

        let blocks = FluxTransformerBlocks(configuration: c, graph: graph)
        for index in 0..<c.doubleBlockCount {
            (text, image) = try blocks.doubleStream(image: image, text: text, conditioning: conditioning, rotary: rotary,
                                                    weights: weights("transformer_blocks")(index))                  // [B, Lt, D], [B, Li, D]
        }
        var joint = try graph.concat([text, image], axis: 1)                                                           // [B, Lt + Li, D]
        for index in 0..<c.singleBlockCount {
            joint = try blocks.singleStream(joint, conditioning: conditioning, rotary: rotary,
                                            weights: weights("single_transformer_blocks")(index))                  // [B, Lt + Li, D]
        }
        image = try graph.slice(joint, axis: 1, start: textLength, length: imageLength)                               // [B, Li, D]

        // norm_out (AdaLayerNormContinuous): its projection holds [scale; shift].
        let finalModulation = try weights("norm_out")("linear").linear(graph.silu(conditioning), width, 2 * width)    // [B, 2D]
        let scaleShift = try graph.chunk(finalModulation, 2, axis: 1)
        let normed = try graph.layerNorm(image, weight: nil, bias: nil, epsilon: 1e-6)
        image = try graph.modulate(normed, shift: scaleShift[1], scale: scaleShift[0])                                 // [B, Li, D]
        return try weights("proj_out").linear(image, width, c.patchSize * c.patchSize * c.outChannels)              // [B, Li, p^2 C]
    }

    /// `timestep_embedder(sinusoid(1000 t)) (+ guidance_embedder(sinusoid(1000 g))) + text_embedder(pooled)`.
    func conditioningEmbedding(timesteps: Tensor, guidance: Tensor?, pooled: Tensor, activations: DType,
                               weights: WeightScope) throws -> Tensor {
        let c = configuration, graph = weights.graph, width = c.innerDimension
        // Timesteps(256, flip_sin_to_cos=True, downscale_freq_shift=0) of a value scaled to [0, 1000].
        func sinusoidMLP(_ value: Tensor, _ scope: WeightScope) throws -> Tensor {
            let sinusoid = try graph.cast(graph.timestepEmbedding(
                graph.scale(value, by: 1000), TimestepEmbedding(dimension: 256, flipSinToCos: true, downscaleFrequencyShift: 0)),
                to: activations)                                                                                         // [B, 256]
            let hidden = try graph.silu(scope("linear_1").linear(sinusoid, 256, width))
            return try scope("linear_2").linear(hidden, width, width)                                                    // [B, D]
        }
        var embedding = try sinusoidMLP(timesteps, weights("timestep_embedder"))
        if c.guidanceEmbeds {
            guard let guidance else {
                throw GraphError("flux", "guidance_embeds is set (FLUX.1-dev): a guidance scale [B] is required")
            }
            embedding = try graph.add(embedding, sinusoidMLP(guidance, weights("guidance_embedder")))
        }
        let text = weights("text_embedder")
        let projected = try text("linear_2").linear(
            graph.silu(text("linear_1").linear(pooled, c.pooledProjectionDimension, width)), width, width)             // [B, D]
        return try graph.add(embedding, projected)
    }

    private func checkInputs(_ hidden: Tensor, _ text: Tensor, _ pooled: Tensor, _ timesteps: Tensor, _ guidance: Tensor?,
                             _ cos: Tensor, _ sin: Tensor) throws {
        let c = configuration
        guard hidden.shape.rank == 3, hidden.shape[2] == c.inChannels else {
            throw GraphError("flux", "hidden states \(hidden.shape) are not [B, L, in_channels \(c.inChannels)]")
        }
        let batch = hidden.shape[0]
        guard text.shape.rank == 3, text.shape[0] == batch, text.shape[2] == c.jointAttentionDimension else {
            throw GraphError("flux", "text states \(text.shape) are not [\(batch), L, joint_attention_dim \(c.jointAttentionDimension)]")
        }
        guard pooled.shape == [batch, c.pooledProjectionDimension] else {
            throw GraphError("flux", "pooled projections \(pooled.shape) are not [\(batch), \(c.pooledProjectionDimension)]")
        }
        guard timesteps.shape == [batch] else { throw GraphError("flux", "timesteps \(timesteps.shape) are not [\(batch)]") }
        if let guidance, guidance.shape != [batch] { throw GraphError("flux", "guidance \(guidance.shape) is not [\(batch)]") }
        if guidance != nil, !c.guidanceEmbeds {
            throw GraphError("flux", "a guidance scale was given but the transformer has no guidance embedding (guidance_embeds is false)")
        }
        let tableShape: Shape = [text.shape[1] + hidden.shape[1], c.headDimension]
        guard cos.shape == tableShape, sin.shape == tableShape else {
            throw GraphError("flux", "rotary tables \(cos.shape), \(sin.shape) are not [Lt + Li, head_dim] = \(tableShape)")
        }
    }
}
