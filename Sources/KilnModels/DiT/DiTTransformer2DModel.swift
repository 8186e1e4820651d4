import KilnGraph

/// The class-conditional Diffusion Transformer (Peebles & Xie 2023, "Scalable Diffusion Models
/// with Transformers", https://arxiv.org/abs/2212.09748) in diffusers' `DiTTransformer2DModel`
/// layout: patchify the latent, add a fixed 2-D sin-cos position embedding, run N blocks of
/// self-attention and MLP, each modulated by adaLN-Zero from the timestep + class embedding,
/// then a modulated final layer and unpatchify.
///
/// Shapes: sample `[B, C, H, W]`, timesteps `[B]` (f32), class labels `[B]` (int32, the null
/// class `num_classes` for guidance's unconditional half) -> `[B, C_out, H, W]`, where `C_out`
/// is `2C` for learned sigma: channels `0..<C` are the noise prediction, `C..<2C` the variance.
/// `H` and `W` must be multiples of the patch size; at other sizes than `sample_size` the
/// position embedding is stretched to the trained grid, as diffusers does.
///
/// diffusers keeps a copy of the timestep and class embedders in every block
/// (`transformer_blocks.N.norm1.emb`) and reads block 0's for the final layer; so does this,
/// unless `sharesEmbedder` says the checkpoint has one set for all blocks (the original layout),
/// which is then computed once and read from block 0's names.
public struct DiTTransformer2DModel: Sendable {
    public let configuration: DiTConfiguration
    public let sharesEmbedder: Bool

    /// Name of the graph constant holding the sin-cos position table; its values come with the
    /// output (`Output.hostConstants`), not from the checkpoint.
    public static let positionEmbeddingName = "kiln.dit.pos_embed"

    public init(configuration: DiTConfiguration, sharesEmbedder: Bool = false) {
        self.configuration = configuration
        self.sharesEmbedder = sharesEmbedder
    }

    /// The prediction and the constants the graph needs besides the checkpoint's weights.
    public struct Output {
        /// `[B, C_out, H, W]`.
        public let sample: Tensor
        /// The position table `[h * w, D]`, to merge into the prepared graph's constants.
        public let hostConstants: [String: HostTensor]
    }

    /// Builds the forward pass: sample `[B, C, H, W]`, timesteps `[B]` (f32), class labels `[B]`
    /// (int32) -> `Output.sample` `[B, C_out, H, W]`. (diffusers unpatchifies square grids only;
    /// this also takes `H != W`.)
    public func callAsFunction(sample: Tensor, timesteps: Tensor, classLabels: Tensor, weights: WeightScope) throws -> Output {
        let c = configuration, graph = weights.graph
        guard sample.shape.rank == 4, timesteps.shape == [sample.shape[0]], classLabels.shape == [sample.shape[0]] else {
            throw GraphError("dit", "expected sample [B, C, H, W], timesteps [B], class labels [B]; got \(sample.shape), \(timesteps.shape), \(classLabels.shape)")
        }
        let (batch, channels, height, width) = (sample.shape[0], sample.shape[1], sample.shape[2], sample.shape[3])
        let (p, d, outChannels) = (c.patchSize, c.hiddenSize, c.resolvedOutChannels)
        guard channels == c.inChannels else {
            throw GraphError("dit", "sample \(sample.shape) has \(channels) channels, the config's in_channels is \(c.inChannels)")
        }
        guard height % p == 0, width % p == 0 else {
            throw GraphError("dit", "sample \(sample.shape): height and width must be multiples of patch_size \(p)")
        }
        let (rows, columns) = (height / p, width / p)

        // Patchify: a p x p stride-p convolution is a linear map of each patch.      [B, D, h, w]
        let patches = try weights("pos_embed")("proj").conv2d(sample, channels, d, kernel: p, stride: p)
        var x = try graph.permute(graph.reshape(patches, [batch, d, rows * columns]), [0, 2, 1])     // [B, L, D]
        let table = SinCosPositionEmbedding.table(width: d, rows: rows, columns: columns, baseSize: c.sampleSize / p)
        let positions = graph.constant(Self.positionEmbeddingName, table.shape, dtype: sample.dtype)      // [L, D]
        x = try graph.add(x, positions)                                                                   // [B, L, D]

        // Each block conditions on its copy of the timestep + class embedding.                 [B, D]
        var firstConditioning: Tensor?
        for index in 0..<c.layerCount {
            let block = weights("transformer_blocks")(index)
            let conditioning = try firstConditioning.flatMap { sharesEmbedder ? $0 : nil }
                ?? self.conditioning(timesteps: timesteps, classLabels: classLabels, activations: sample.dtype, block("norm1")("emb"))
            if firstConditioning == nil { firstConditioning = conditioning }
            x = try self.block(x, conditioning: conditioning, block)
        }
        guard let conditioning = firstConditioning else { throw GraphError("dit", "num_layers must be at least 1") }

        // Final layer: adaLN (shift, scale) without gate, then a linear to p*p*C_out per token.
        let final = try weights("proj_out_1").linear(graph.silu(conditioning), d, 2 * d)               // [B, 2D]
        let (shift, scale) = try pair(graph.chunk(final, 2, axis: 1))
        let normed = try graph.layerNorm(x, weight: nil, bias: nil, epsilon: 1e-6)                       // [B, L, D]
        let modulated = try graph.modulate(normed, shift: shift, scale: scale)
        let tokens = try weights("proj_out_2").linear(modulated, d, p * p * outChannels)                // [B, L, p*p*C_out]

        // Unpatchify: (n, h, w, p, q, c) -> (n, c, h, p, w, q).                                 [B, C_out, H, W]
        let grid = try graph.reshape(tokens, [batch, rows, columns, p, p, outChannels])
        let image = try graph.reshape(graph.permute(grid, [0, 5, 1, 3, 2, 4]), [batch, outChannels, height, width])
        var stored = table
        stored.dtype = sample.dtype
        return Output(sample: image, hostConstants: [Self.positionEmbeddingName: stored])
    }

    /// diffusers' `CombinedTimestepLabelEmbeddings`: an MLP on 256 sinusoids of t (cosines first,
    /// frequency shift 1) plus the class's row of the label table.                        [B, D]
    private func conditioning(timesteps: Tensor, classLabels: Tensor, activations: DType, _ scope: WeightScope) throws -> Tensor {
        let graph = scope.graph, d = configuration.hiddenSize
        let frequencies = 256
        // Sinusoids in f32 (timesteps stay exact), then cast to the activations' type, as diffusers.
        let sinusoids = try graph.cast(graph.timestepEmbedding(
            timesteps, TimestepEmbedding(dimension: frequencies, flipSinToCos: true, downscaleFrequencyShift: 1)), to: activations)
        let mlp = scope("timestep_embedder")
        let time = try mlp("linear_2").linear(graph.silu(mlp("linear_1").linear(sinusoids, frequencies, d)), d, d)  // [B, D]
        let table = try scope("class_embedder")("embedding_table").weight("weight", [configuration.nullClass + 1, d])
        return try graph.add(time, graph.embedding(table, ids: classLabels))                                        // [B, D]
    }

    /// One DiT block with adaLN-Zero:
    /// `x += gate_msa * attn(modulate(norm1(x)))`, then `x += gate_mlp * mlp(modulate(norm3(x)))`.
    private func block(_ x: Tensor, conditioning: Tensor, _ block: WeightScope) throws -> Tensor {
        let c = configuration, graph = block.graph, d = c.hiddenSize
        let batch = x.shape[0]
        // shift, scale, gate for attention, then for the MLP.                                   6 x [B, D]
        let modulation = try graph.chunk(block("norm1")("linear").linear(graph.silu(conditioning), d, 6 * d), 6, axis: 1)
        func gated(_ gate: Tensor, _ value: Tensor) throws -> Tensor {
            try graph.mul(graph.reshape(gate, [batch, 1, d]), value)                                  // [B, L, D]
        }

        let normed = try graph.modulate(graph.layerNorm(x, weight: nil, bias: nil, epsilon: 1e-6),
                                        shift: modulation[0], scale: modulation[1])                  // [B, L, D]
        let attention = block("attn1")
        let bias = c.attentionBias
        let q = try attention("to_q").linear(normed, d, d, bias: bias)                                         // [B, L, D]
        let k = try attention("to_k").linear(normed, d, d, bias: bias)
        let v = try attention("to_v").linear(normed, d, d, bias: bias)
        let attended = try attention("to_out")(0).linear(graph.multiHeadAttention(q, k, v, heads: c.headCount), d, d) // [B, L, D]
        let afterAttention = try graph.add(x, gated(modulation[2], attended))

        let norm3 = c.normElementwiseAffine
            ? try block("norm3").layerNorm(afterAttention, d, epsilon: c.normEpsilon)
            : try graph.layerNorm(afterAttention, weight: nil, bias: nil, epsilon: c.normEpsilon)
        let normed2 = try graph.modulate(norm3, shift: modulation[3], scale: modulation[4])               // [B, L, D]
        let feedForward = block("ff")("net")
        let inner = 4 * d
        let hidden = try graph.gelu(feedForward(0)("proj").linear(normed2, d, inner),
                                    approximateTanh: c.activation == "gelu-approximate")                  // [B, L, 4D]
        let mlp = try feedForward(2).linear(hidden, inner, d)                                            // [B, L, D]
        return try graph.add(afterAttention, gated(modulation[5], mlp))
    }

    private func pair(_ parts: [Tensor]) throws -> (Tensor, Tensor) {
        guard parts.count == 2 else { throw GraphError("dit", "expected two chunks, got \(parts.count)") }
        return (parts[0], parts[1])
    }
}
