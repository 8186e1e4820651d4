import KilnGraph

/// The conditional U-Net denoiser of Stable Diffusion 1.x/2.x/SDXL (Rombach et al. 2022,
/// https://arxiv.org/abs/2112.10752; SDXL: Podell et al. 2023, https://arxiv.org/abs/2307.01952)
/// in diffusers' layout: ResNet blocks conditioned on the timestep, spatial transformers with
/// cross-attention to the text, and skip connections from each down level to its up level.
///
/// Shapes: sample `[B, C, h, w]`, timesteps `[B]`, text `[B, T, D]` (SDXL adds text_embeds
/// `[B, P]` and time_ids `[B, 6]`; LCM-distilled models a guidance embedding `[B, time_cond_proj_dim]`)
/// -> prediction `[B, out, h, w]`.
/// Any latent size works: sizes that halve to odd numbers on the way down are matched to
/// their skip connections on the way up, as diffusers' `forward_upsample_size` does.
public struct UNet2DConditionModel: Sendable {
    public let configuration: UNetConfiguration

    public init(configuration: UNetConfiguration) { self.configuration = configuration }

    /// SDXL's extra conditioning (`added_cond_kwargs`).
    public struct AddedConditioning: Sendable {
        public let textEmbeddings: Tensor   // [B, P]
        public let timeIDs: Tensor          // [B, 6]
        public init(textEmbeddings: Tensor, timeIDs: Tensor) {
            self.textEmbeddings = textEmbeddings
            self.timeIDs = timeIDs
        }
    }

    public func callAsFunction(
        sample: Tensor, timesteps: Tensor, text: Tensor, added: AddedConditioning? = nil, timestepCondition: Tensor? = nil,
        weights: WeightScope
    ) throws -> Tensor {
        let c = configuration, graph = weights.graph
        let levels = c.blockOutChannels.count

        // Timestep embedding, plus SDXL's text/size embedding.                                   [B, 4*C0]
        let base = c.blockOutChannels[0]
        // The sinusoids are computed in the timesteps' type (f32 keeps fractional sigma-space
        // timesteps exact) and cast to the activations' type, as diffusers does.
        let sinusoid = try graph.cast(graph.timestepEmbedding(
            timesteps, TimestepEmbedding(dimension: base, flipSinToCos: c.flipSinToCos, downscaleFrequencyShift: c.frequencyShift)),
            to: sample.dtype)
        var timeInput = sinusoid
        if let condition = c.timestepConditionDimension {
            // LCM-distilled U-Nets take the guidance scale as an embedding added here.
            guard let timestepCondition else { throw GraphError("unet", "time_cond_proj_dim \(condition) needs a timestep condition [B, \(condition)]") }
            timeInput = try graph.add(sinusoid, weights("time_embedding")("cond_proj").linear(timestepCondition, condition, base, bias: false))
        } else if timestepCondition != nil {
            throw GraphError("unet", "a timestep condition was given but the config has no time_cond_proj_dim")
        }
        var embedding = try timestepMLP(timeInput, base, weights("time_embedding"))
        if let added {
            embedding = try graph.add(embedding, additionEmbedding(added, weights))
        }
        let activatedEmbedding = try graph.silu(embedding)

        // Down path, keeping every intermediate for the skips.
        var x = try weights("conv_in").conv2d(sample, c.inChannels, base, kernel: 3, padding: 1)       // [B, C0, h, w]
        var skips = [x]
        var channels = base
        for level in 0..<levels {
            let block = weights("down_blocks")(level)
            let outChannels = c.blockOutChannels[level]
            let hasAttention = c.downBlockTypes[level].hasPrefix("CrossAttn")
            for index in 0..<c.layersPerBlock[level] {
                x = try resnet(x, channels, outChannels, activatedEmbedding, block("resnets")(index))
                channels = outChannels
                if hasAttention {
                    x = try transformer(x, channels, heads: c.attentionHeads[level], layers: c.transformerLayersPerBlock[level],
                                        text: text, textWidth: c.crossAttentionDimension[level], block("attentions")(index))
                }
                skips.append(x)
            }
            if level < levels - 1 {
                x = try block("downsamplers")(0)("conv").conv2d(x, channels, channels, kernel: 3, stride: 2, padding: 1)
                skips.append(x)
            }
        }

        // Middle: resnet, transformer, resnet.
        let middle = weights("mid_block")
        x = try resnet(x, channels, channels, activatedEmbedding, middle("resnets")(0))
        x = try transformer(x, channels, heads: c.attentionHeads[levels - 1], layers: c.transformerLayersPerBlock[levels - 1],
                            text: text, textWidth: c.crossAttentionDimension[levels - 1], middle("attentions")(0))
        x = try resnet(x, channels, channels, activatedEmbedding, middle("resnets")(1))

        // Up path: each resnet takes the matching skip concatenated on channels.
        for level in 0..<levels {
            let mirrored = levels - 1 - level
            let block = weights("up_blocks")(level)
            let outChannels = c.blockOutChannels[mirrored]
            let hasAttention = c.upBlockTypes[level].hasPrefix("CrossAttn")
            for index in 0...c.layersPerBlock[mirrored] {
                guard let skip = skips.popLast() else { throw GraphError("unet", "ran out of skip connections at up block \(level)") }
                x = try graph.concat([x, skip], axis: 1)
                x = try resnet(x, channels + skip.shape[1], outChannels, activatedEmbedding, block("resnets")(index))
                channels = outChannels
                if hasAttention {
                    x = try transformer(x, channels, heads: c.attentionHeads[mirrored], layers: c.transformerLayersPerBlock[mirrored],
                                        text: text, textWidth: c.crossAttentionDimension[mirrored], block("attentions")(index))
                }
            }
            if level < levels - 1, let skip = skips.last {
                // A size that was odd on the way down comes back one larger from the 2x upsample;
                // diffusers interpolates to the skip's size instead, which picks the same rows.
                var upsampled = try graph.upsampleNearest2x(x)
                if upsampled.shape[2] != skip.shape[2] { upsampled = try graph.slice(upsampled, axis: 2, start: 0, length: skip.shape[2]) }
                if upsampled.shape[3] != skip.shape[3] { upsampled = try graph.slice(upsampled, axis: 3, start: 0, length: skip.shape[3]) }
                x = try block("upsamplers")(0)("conv").conv2d(upsampled, channels, channels, kernel: 3, padding: 1)
            }
        }

        x = try weights("conv_norm_out").groupNorm(x, groups: c.normGroups, channels: channels, epsilon: c.normEpsilon, silu: true)
        return try weights("conv_out").conv2d(x, channels, c.outChannels, kernel: 3, padding: 1)        // [B, out, h, w]
    }

    /// diffusers' TimestepEmbedding: linear, SiLU, linear.
    private func timestepMLP(_ x: Tensor, _ inputs: Int, _ scope: WeightScope) throws -> Tensor {
        let width = configuration.timeEmbedDimension
        let hidden = try scope.graph.silu(scope("linear_1").linear(x, inputs, width))
        return try scope("linear_2").linear(hidden, width, width)
    }

    /// SDXL's `text_time` embedding: sinusoids of the six size/crop ids next to the pooled text.
    private func additionEmbedding(_ added: AddedConditioning, _ weights: WeightScope) throws -> Tensor {
        let c = configuration, graph = weights.graph
        guard let timeWidth = c.additionTimeEmbedDimension, let inputs = c.projectionClassEmbeddingsInputDimension else {
            throw GraphError("unet", "added conditioning given but the config has no addition_time_embed_dim / projection_class_embeddings_input_dim")
        }
        let batch = added.timeIDs.shape[0], idCount = added.timeIDs.shape[1]
        let flat = try graph.reshape(added.timeIDs, [batch * idCount])
        let sinusoids = try graph.cast(graph.timestepEmbedding(
            flat, TimestepEmbedding(dimension: timeWidth, flipSinToCos: c.flipSinToCos, downscaleFrequencyShift: c.frequencyShift)),
            to: added.textEmbeddings.dtype)
        let timeEmbeddings = try graph.reshape(sinusoids, [batch, idCount * timeWidth])               // [B, 6*T]
        let joined = try graph.concat([added.textEmbeddings, timeEmbeddings], axis: 1)                 // [B, P + 6*T]
        guard joined.shape[1] == inputs else {
            throw GraphError("unet", "text_embeds \(added.textEmbeddings.shape) and time_ids \(added.timeIDs.shape) give \(joined.shape[1]) features, config expects \(inputs)")
        }
        return try timestepMLP(joined, inputs, weights("add_embedding"))
    }

    /// ResnetBlock2D: `shortcut(x) + conv2(silu(norm2(conv1(silu(norm1(x))) + proj(silu(emb)))))`.
    private func resnet(_ x: Tensor, _ inChannels: Int, _ outChannels: Int, _ activatedEmbedding: Tensor, _ block: WeightScope) throws -> Tensor {
        let c = configuration, graph = block.graph
        var h = try block("norm1").groupNorm(x, groups: c.normGroups, channels: inChannels, epsilon: c.normEpsilon, silu: true)
        h = try block("conv1").conv2d(h, inChannels, outChannels, kernel: 3, padding: 1)
        let time = try block("time_emb_proj").linear(activatedEmbedding, c.timeEmbedDimension, outChannels)    // [B, out]
        h = try graph.add(h, graph.reshape(time, [time.shape[0], outChannels, 1, 1]))
        h = try block("norm2").groupNorm(h, groups: c.normGroups, channels: outChannels, epsilon: c.normEpsilon, silu: true)
        h = try block("conv2").conv2d(h, outChannels, outChannels, kernel: 3, padding: 1)
        let shortcut = inChannels == outChannels ? x : try block("conv_shortcut").conv2d(x, inChannels, outChannels, kernel: 1)
        return try graph.add(shortcut, h)
    }

    /// Transformer2DModel: group norm, project in, `layers` transformer blocks over the h*w
    /// tokens (self-attention, cross-attention to the text, GEGLU feed-forward), project out, residual.
    private func transformer(
        _ x: Tensor, _ channels: Int, heads: Int, layers: Int, text: Tensor, textWidth: Int, _ block: WeightScope
    ) throws -> Tensor {
        let c = configuration, graph = block.graph
        let (batch, height, width) = (x.shape[0], x.shape[2], x.shape[3])
        guard text.shape[2] == textWidth else {
            throw GraphError("unet", "text embeddings \(text.shape) do not match cross_attention_dim \(textWidth)")
        }
        let normed = try block("norm").groupNorm(x, groups: c.normGroups, channels: channels, epsilon: 1e-6)
        func toTokens(_ t: Tensor) throws -> Tensor {
            try graph.permute(graph.reshape(t, [batch, channels, height * width]), [0, 2, 1])                    // [B, hw, C]
        }
        var tokens = c.useLinearProjection
            ? try block("proj_in").linear(toTokens(normed), channels, channels)
            : try toTokens(block("proj_in").conv2d(normed, channels, channels, kernel: 1))
        for index in 0..<layers {
            tokens = try transformerBlock(tokens, channels, heads: heads, text: text, textWidth: textWidth, block("transformer_blocks")(index))
        }
        let spatial: Tensor
        if c.useLinearProjection {
            let projected = try block("proj_out").linear(tokens, channels, channels)
            spatial = try graph.reshape(graph.permute(projected, [0, 2, 1]), [batch, channels, height, width])
        } else {
            let unprojected = try graph.reshape(graph.permute(tokens, [0, 2, 1]), [batch, channels, height, width])
            spatial = try block("proj_out").conv2d(unprojected, channels, channels, kernel: 1)
        }
        return try graph.add(spatial, x)
    }

    /// BasicTransformerBlock: pre-LayerNorm self-attention, cross-attention and GEGLU MLP, each residual.
    private func transformerBlock(_ x: Tensor, _ width: Int, heads: Int, text: Tensor, textWidth: Int, _ block: WeightScope) throws -> Tensor {
        let graph = block.graph
        var h = try graph.add(x, attention(block("norm1").layerNorm(x, width, epsilon: 1e-5), context: nil, width, heads: heads, block("attn1")))
        h = try graph.add(h, attention(block("norm2").layerNorm(h, width, epsilon: 1e-5), context: (text, textWidth), width, heads: heads, block("attn2")))
        let normed = try block("norm3").layerNorm(h, width, epsilon: 1e-5)
        let feedForward = block("ff")("net")
        let gated = try graph.geglu(feedForward(0)("proj").linear(normed, width, 8 * width))                      // [B, L, 4W]
        return try graph.add(h, feedForward(2).linear(gated, 4 * width, width))
    }

    /// diffusers' Attention with bias-free q/k/v and a biased output projection.
    private func attention(_ x: Tensor, context: (Tensor, Int)?, _ width: Int, heads: Int, _ block: WeightScope) throws -> Tensor {
        let graph = block.graph
        let (source, sourceWidth) = context ?? (x, width)
        let q = try block("to_q").linear(x, width, width, bias: false)
        let k = try block("to_k").linear(source, sourceWidth, width, bias: false)
        let v = try block("to_v").linear(source, sourceWidth, width, bias: false)
        return try block("to_out")(0).linear(graph.multiHeadAttention(q, k, v, heads: heads), width, width)
    }
}
