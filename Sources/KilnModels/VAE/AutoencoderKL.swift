import KilnGraph

/// The KL-regularised autoencoder of latent diffusion (Rombach et al. 2022,
/// https://arxiv.org/abs/2112.10752) in diffusers' layout: a convolutional encoder to a Gaussian
/// over latents and a decoder back to pixels, with one self-attention block in each middle.
///
/// Shapes: image `[B, 3, H, W]` -> mean, log-variance `[B, L, H/f, W/f]` (f = downscaleFactor);
/// latents `[B, L, h, w]` -> image `[B, 3, h*f, w*f]`. Scaling/shift factors are applied by the
/// pipeline, not here, as in diffusers.
public struct AutoencoderKL: Sendable {
    public let configuration: AutoencoderKLConfiguration
    private let epsilon: Float = 1e-6

    public init(configuration: AutoencoderKLConfiguration) { self.configuration = configuration }

    /// The encoder's Gaussian: mean and log-variance (clamped to [-30, 20] as diffusers does).
    public func encode(_ image: Tensor, weights: WeightScope) throws -> (mean: Tensor, logVariance: Tensor) {
        let halves = try weights.graph.chunk(moments(image, weights: weights), 2, axis: 1)
        return (halves[0], try weights.graph.clamp(halves[1], min: -30, max: 20))
    }

    /// Image `[B, 3, H, W]` -> the encoder's raw moments `[B, 2L, H/f, W/f]`: mean channels, then
    /// unclamped log-variance channels (tiled encoding blends these before clamping, as diffusers does).
    public func moments(_ image: Tensor, weights: WeightScope) throws -> Tensor {
        let c = configuration, graph = weights.graph
        let encoder = weights("encoder")
        var x = try encoder("conv_in").conv2d(image, c.inChannels, c.blockOutChannels[0], kernel: 3, padding: 1)
        var channels = c.blockOutChannels[0]
        for (level, outChannels) in c.blockOutChannels.enumerated() {
            let block = encoder("down_blocks")(level)
            for index in 0..<c.layersPerBlock {
                x = try resnet(x, channels, outChannels, block("resnets")(index))
                channels = outChannels
            }
            if level < c.blockOutChannels.count - 1 {
                // Downsample2D pads only right and bottom by one, then a stride-2 3x3 convolution.
                let conv = block("downsamplers")(0)("conv")
                x = try graph.conv2d(x, weight: conv.weight("weight", [channels, channels, 3, 3]), bias: conv.weight("bias", [channels]),
                                     stride: (2, 2), padding: (0, 0), extraPadding: (1, 1))
            }
        }
        x = try middle(x, channels, encoder("mid_block"))
        x = try encoder("conv_norm_out").groupNorm(x, groups: c.normGroups, channels: channels, epsilon: epsilon, silu: true)
        x = try encoder("conv_out").conv2d(x, channels, 2 * c.latentChannels, kernel: 3, padding: 1)      // [B, 2L, h, w]
        if c.useQuantConvolution {
            x = try weights("quant_conv").conv2d(x, 2 * c.latentChannels, 2 * c.latentChannels, kernel: 1)
        }
        return x
    }

    /// `mean + exp(logVariance / 2) * noise`: the latent_dist.sample() of diffusers with given noise.
    public func sample(mean: Tensor, logVariance: Tensor, noise: Tensor, graph: Graph) throws -> Tensor {
        try graph.add(mean, graph.mul(graph.unary(.exp, graph.scale(logVariance, by: 0.5)), noise))
    }

    /// Latents `[B, L, h, w]` -> image `[B, out, h*f, w*f]`.
    public func decode(_ latents: Tensor, weights: WeightScope) throws -> Tensor {
        let c = configuration, graph = weights.graph
        var x = latents
        if c.usePostQuantConvolution {
            x = try weights("post_quant_conv").conv2d(x, c.latentChannels, c.latentChannels, kernel: 1)
        }
        let decoder = weights("decoder")
        let reversed = Array(c.blockOutChannels.reversed())
        var channels = reversed[0]
        x = try decoder("conv_in").conv2d(x, c.latentChannels, channels, kernel: 3, padding: 1)
        x = try middle(x, channels, decoder("mid_block"))
        for (level, outChannels) in reversed.enumerated() {
            let block = decoder("up_blocks")(level)
            for index in 0...c.layersPerBlock {
                x = try resnet(x, channels, outChannels, block("resnets")(index))
                channels = outChannels
            }
            if level < reversed.count - 1 {
                x = try block("upsamplers")(0)("conv").conv2d(graph.upsampleNearest2x(x), channels, channels, kernel: 3, padding: 1)
            }
        }
        x = try decoder("conv_norm_out").groupNorm(x, groups: c.normGroups, channels: channels, epsilon: epsilon, silu: true)
        return try decoder("conv_out").conv2d(x, channels, c.outChannels, kernel: 3, padding: 1)
    }

    /// UNetMidBlock2D without time embedding: resnet, (attention), resnet.
    private func middle(_ x: Tensor, _ channels: Int, _ block: WeightScope) throws -> Tensor {
        var h = try resnet(x, channels, channels, block("resnets")(0))
        if configuration.midBlockAttention {
            h = try attention(h, channels, block("attentions")(0))
        }
        return try resnet(h, channels, channels, block("resnets")(1))
    }

    /// ResnetBlock2D without time embedding: `shortcut(x) + conv2(silu(norm2(conv1(silu(norm1(x))))))`.
    func resnet(_ x: Tensor, _ inChannels: Int, _ outChannels: Int, _ block: WeightScope) throws -> Tensor {
        let groups = configuration.normGroups
        var h = try block("norm1").groupNorm(x, groups: groups, channels: inChannels, epsilon: epsilon, silu: true)
        h = try block("conv1").conv2d(h, inChannels, outChannels, kernel: 3, padding: 1)
        h = try block("norm2").groupNorm(h, groups: groups, channels: outChannels, epsilon: epsilon, silu: true)
        h = try block("conv2").conv2d(h, outChannels, outChannels, kernel: 3, padding: 1)
        let shortcut = inChannels == outChannels ? x : try block("conv_shortcut").conv2d(x, inChannels, outChannels, kernel: 1)
        return try block.graph.add(shortcut, h)
    }

    /// Single-head self-attention over the `h * w` positions, with a residual.
    private func attention(_ x: Tensor, _ channels: Int, _ block: WeightScope) throws -> Tensor {
        let graph = block.graph
        let (batch, height, width) = (x.shape[0], x.shape[2], x.shape[3])
        let normed = try block("group_norm").groupNorm(x, groups: configuration.normGroups, channels: channels, epsilon: epsilon)
        let tokens = try graph.permute(graph.reshape(normed, [batch, channels, height * width]), [0, 2, 1])          // [B, HW, C]
        let q = try block("to_q").linear(tokens, channels, channels)                                                    // [B, HW, C]
        let k = try block("to_k").linear(tokens, channels, channels)
        let v = try block("to_v").linear(tokens, channels, channels)
        let attended = try block("to_out")(0).linear(graph.multiHeadAttention(q, k, v, heads: 1), channels, channels)   // [B, HW, C]
        let spatial = try graph.reshape(graph.permute(attended, [0, 2, 1]), [batch, channels, height, width])
        return try graph.add(x, spatial)
    }
}
