import KilnGraph

/// The tiny autoencoder TAESD (Ollin Boer Bohan, https://github.com/madebyollin/taesd), as
/// diffusers' `AutoencoderTiny` lays it out: plain 3x3 convolutions and residual blocks
/// (`conv-relu-conv-relu-conv + skip`, then relu), no normalisation or attention, so it decodes
/// in a small fraction of the KL VAE's time at a lower quality.
///
/// The graph is the convolutional part; the pipeline applies what runs on host values around
/// it, as diffusers' forward does: the decoder's input clamp `tanh(z / 3) · 3` and its output
/// `x · 2 - 1` (TAESD makes [0, 1]), the encoder's input `(x + 1) / 2`.
///
/// Shapes: latents `[B, L, h, w]` -> image `[B, 3, h·f, w·f]` in [0, 1] (f = 8);
/// image `[B, 3, H, W]` in [0, 1] -> latents `[B, L, H/f, W/f]`.
public struct AutoencoderTiny: Sendable {
    public let configuration: AutoencoderTinyConfiguration

    public init(configuration: AutoencoderTinyConfiguration) { self.configuration = configuration }

    /// Clamped latents `[B, L, h, w]` -> `[B, 3, h·f, w·f]` in [0, 1]; weights under `decoder.layers.N`.
    public func decode(_ latents: Tensor, weights: WeightScope) throws -> Tensor {
        let c = configuration, graph = weights.graph, layers = weights("decoder")("layers")
        var index = 0
        var channels = c.decoderBlockOutChannels[0]
        var x = try graph.relu(layers(index).conv2d(latents, c.latentChannels, channels, kernel: 3, padding: 1))       // [B, C0, h, w]
        index += 2
        for (level, count) in c.decoderBlockCounts.enumerated() {
            let width = c.decoderBlockOutChannels[level]
            for _ in 0..<count {
                x = try block(x, channels, width, layers(index))                                                        // [B, C, h', w']
                channels = width
                index += 1
            }
            let last = level == c.decoderBlockCounts.count - 1
            if !last {
                x = try graph.upsampleNearest2x(x)                                                                       // [B, C, 2h', 2w']
                index += 1
            }
            x = try layers(index).conv2d(x, channels, last ? c.outChannels : channels, kernel: 3, padding: 1, bias: last)
            index += 1
        }
        return x                                                                                                         // [B, 3, H, W]
    }

    /// Image `[B, 3, H, W]` in [0, 1] -> latents `[B, L, H/f, W/f]`; weights under `encoder.layers.N`.
    public func encode(_ image: Tensor, weights: WeightScope) throws -> Tensor {
        let c = configuration, graph = weights.graph, layers = weights("encoder")("layers")
        var index = 0
        var x = image
        var channels = c.inChannels
        for (level, count) in c.encoderBlockCounts.enumerated() {
            let width = c.encoderBlockOutChannels[level]
            if level == 0 {
                x = try layers(index).conv2d(x, channels, width, kernel: 3, padding: 1)                                 // [B, C0, H, W]
            } else {
                // A stride-2 convolution halves the size (diffusers' reads the level's own width in and out).
                let conv = layers(index)
                x = try graph.conv2d(x, weight: conv.weight("weight", [width, width, 3, 3]), bias: nil, stride: (2, 2), padding: (1, 1))
            }
            channels = width
            index += 1
            for _ in 0..<count {
                x = try block(x, channels, channels, layers(index))
                index += 1
            }
        }
        return try layers(index).conv2d(x, channels, c.latentChannels, kernel: 3, padding: 1)                          // [B, L, H/f, W/f]
    }

    /// `relu(conv(relu(conv(relu(conv(x))))) + skip(x))`; the skip is a 1x1 convolution when the width changes.
    private func block(_ x: Tensor, _ inputs: Int, _ outputs: Int, _ weights: WeightScope) throws -> Tensor {
        let graph = weights.graph, conv = weights("conv")
        var y = try graph.relu(conv(0).conv2d(x, inputs, outputs, kernel: 3, padding: 1))
        y = try graph.relu(conv(2).conv2d(y, outputs, outputs, kernel: 3, padding: 1))
        y = try conv(4).conv2d(y, outputs, outputs, kernel: 3, padding: 1)
        let skip = inputs == outputs ? x : try weights("skip").conv2d(x, inputs, outputs, kernel: 1, bias: false)
        return try graph.relu(graph.add(y, skip))
    }
}

extension Graph {
    /// `max(x, 0)` (NaN stays NaN), as a clamp with no upper bound.
    public func relu(_ x: Tensor) throws -> Tensor { try clamp(x, min: 0, max: .infinity) }
}

/// TAESD's released files (`taesd_decoder.safetensors`, `taesdxl_decoder`, `taesd3_decoder`,
/// `taef1_decoder`, and the `_encoder` files) hold one `nn.Sequential` each, keyed by position:
/// the decoder's starts with its clamp, so its layer N is diffusers' `decoder.layers.(N-1)`; the
/// encoder's layer N is `encoder.layers.N`.
public enum TinyAutoencoderFile {
    /// Whether `source` is a released decoder (or encoder) file rather than diffusers' keys.
    public static func isSequential(_ source: TensorSource) -> Bool {
        source.shape(of: "1.weight") != nil || source.shape(of: "0.weight") != nil
    }

    /// A decoder file's weights under diffusers' names, the latent channels its first convolution
    /// reads and the width it makes (64 in every release).
    public static func decoder(_ source: TensorSource) throws -> (weights: TensorSource, latentChannels: Int, width: Int) {
        guard let first = source.shape(of: "1.weight"), first.rank == 4 else {
            throw WeightError.missing(origin: source.origin, name: "1.weight", expected: nil)
        }
        var mapping: OriginalKeyNames.Mapping = [:]
        for key in source.names {
            guard let dot = key.firstIndex(of: "."), let position = Int(key[..<dot]), position >= 1 else { continue }
            mapping["decoder.layers.\(position - 1)" + key[dot...]] = (key, .identity)
        }
        return (RenamedTensorSource(base: source, mapping: mapping, origin: source.origin), first[1], first[0])
    }
}
