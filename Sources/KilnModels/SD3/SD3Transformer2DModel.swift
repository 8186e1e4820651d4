import KilnGraph

/// The multimodal diffusion transformer (MMDiT) of Stable Diffusion 3 and 3.5 (Esser et al. 2024,
/// "Scaling Rectified Flow Transformers for High-Resolution Image Synthesis",
/// https://arxiv.org/abs/2403.03206) in diffusers' `SD3Transformer2DModel` layout.
///
/// The latent is cut into `p x p` patches that become image tokens, with a 2-D sin-cos position
/// table cropped from the centre of a `pos_embed_max_size` grid; the text states become context
/// tokens. Each joint block modulates both streams from the timestep + pooled-text vector
/// (adaLN-Zero), lets them attend jointly over `[image; context]` and gives each its own MLP.
///
/// Shapes: hidden states `[B, C, H, W]`, text `[B, L, joint_attention_dim]`, pooled text
/// `[B, pooled_projection_dim]`, timesteps `[B]` (flow-matching sigma x 1000, fractional)
/// -> velocity `[B, out_channels, H, W]`. H and W must be multiples of the patch size.
public struct SD3Transformer2DModel: Sendable {
    public let configuration: SD3TransformerConfiguration

    public init(configuration: SD3TransformerConfiguration) { self.configuration = configuration }

    /// One forward pass over `weights` in diffusers' key names.
    public func callAsFunction(
        hiddenStates: Tensor, encoderHiddenStates: Tensor, pooledProjections: Tensor, timesteps: Tensor, weights: WeightScope
    ) throws -> Tensor {
        let c = configuration, graph = weights.graph
        let width = c.innerDimension, patch = c.patchSize
        guard hiddenStates.shape.rank == 4, hiddenStates.shape[1] == c.inChannels else {
            throw GraphError("sd3", "hidden states \(hiddenStates.shape) must be [B, \(c.inChannels), H, W]")
        }
        let (batch, height, widthInPixels) = (hiddenStates.shape[0], hiddenStates.shape[2], hiddenStates.shape[3])
        guard height % patch == 0, widthInPixels % patch == 0 else {
            throw GraphError("sd3", "latent size \(height)x\(widthInPixels) is not a multiple of the patch size \(patch)")
        }
        let (rows, columns) = (height / patch, widthInPixels / patch)

        // Patchify: a stride-p convolution, flattened to tokens, plus the cropped positions.  [B, N, D]
        let patches = try weights("pos_embed")("proj").conv2d(hiddenStates, c.inChannels, width, kernel: patch, stride: patch)
        let tokens = try graph.permute(graph.reshape(patches, [batch, width, rows * columns]), [0, 2, 1])
        var x = try graph.add(tokens, croppedPositions(rows: rows, columns: columns, weights: weights("pos_embed")))

        // Conditioning vector y = MLP(sinusoid(t)) + MLP(pooled text).                        [B, D]
        let embedding = try timeTextEmbedding(timesteps, pooledProjections, dtype: hiddenStates.dtype, weights("time_text_embed"))
        let activatedEmbedding = try graph.silu(embedding)

        // Context tokens: the text states projected to the transformer's width.              [B, L, D]
        var context: Tensor? = try weights("context_embedder").linear(encoderHiddenStates, c.jointAttentionDimension, c.captionProjectionDimension)

        let block = JointTransformerBlock(configuration: c)
        for index in 0..<c.layerCount {
            guard let currentContext = context else { throw GraphError("sd3", "block \(index) follows the context-only-as-input last block") }
            (x, context) = try block(
                image: x, context: currentContext, conditioning: activatedEmbedding,
                contextPreOnly: index == c.layerCount - 1, dualAttention: c.dualAttentionLayers.contains(index),
                weights: weights("transformer_blocks")(index))                                           // [B, N, D]
        }

        // Final adaLN (scale, shift from y; no affine), then back to p x p x C per token.    [B, N, p*p*C]
        let modulation = try graph.chunk(weights("norm_out")("linear").linear(activatedEmbedding, width, 2 * width), 2, axis: 1)
        let normalised = try graph.layerNorm(x, weight: nil, bias: nil, epsilon: 1e-6)
        x = try graph.modulate(normalised, shift: modulation[1], scale: modulation[0])
        x = try weights("proj_out").linear(x, width, patch * patch * c.outChannels)

        // Unpatchify: [B, h, w, p, q, C] -> [B, C, h, p, w, q].                               [B, C, H, W]
        let grid = try graph.reshape(x, [batch, rows, columns, patch, patch, c.outChannels])
        return try graph.reshape(graph.permute(grid, [0, 5, 1, 3, 2, 4]), [batch, c.outChannels, height, widthInPixels])
    }

    /// The `rows x columns` window at the centre of the stored `[1, M*M, D]` sin-cos table
    /// (`pos_embed.pos_embed`, which diffusers keeps as a persistent buffer; `SD3PositionTable`
    /// computes it for checkpoints without one), as `[1, N, D]`.
    /// The window's top-left corner rounds down, as diffusers' `cropped_pos_embed` does.
    func croppedPositions(rows: Int, columns: Int, weights: WeightScope) throws -> Tensor {
        let width = configuration.innerDimension
        guard let gridSize = configuration.positionEmbeddingMaxSize else {
            throw GraphError("sd3", "pos_embed_max_size is null: only SD3's cropped position grid is supported")
        }
        guard rows <= gridSize, columns <= gridSize else {
            throw GraphError("sd3", "latent of \(rows)x\(columns) patches exceeds pos_embed_max_size \(gridSize)")
        }
        let graph = weights.graph
        let table = try graph.reshape(weights.weight("pos_embed", [1, gridSize * gridSize, width]), [gridSize, gridSize, width])
        let top = (gridSize - rows) / 2, left = (gridSize - columns) / 2
        let window = try graph.slice(graph.slice(table, axis: 0, start: top, length: rows), axis: 1, start: left, length: columns)
        return try graph.reshape(window, [1, rows * columns, width])
    }

    /// diffusers' `CombinedTimestepTextProjEmbeddings`: a 256-wide flipped sinusoid of t through
    /// linear-SiLU-linear, plus the pooled text through linear-SiLU-linear. `-> [B, D]`.
    func timeTextEmbedding(_ timesteps: Tensor, _ pooled: Tensor, dtype: DType, _ weights: WeightScope) throws -> Tensor {
        let c = configuration, graph = weights.graph, width = c.innerDimension
        // Sinusoids in the timesteps' type (fractional t stays exact in f32), then cast.
        let sinusoid = try graph.cast(graph.timestepEmbedding(
            timesteps, TimestepEmbedding(dimension: 256, flipSinToCos: true, downscaleFrequencyShift: 0)), to: dtype)
        let time = weights("timestep_embedder")
        let timeEmbedding = try time("linear_2").linear(graph.silu(time("linear_1").linear(sinusoid, 256, width)), width, width)
        let text = weights("text_embedder")
        let textEmbedding = try text("linear_2").linear(
            graph.silu(text("linear_1").linear(pooled, c.pooledProjectionDimension, width)), width, width)
        return try graph.add(timeEmbedding, textEmbedding)
    }
}
