import KilnGraph

/// The building blocks every model shares, reading their weights through a `WeightScope` with
/// PyTorch's module key names (`weight`, `bias`).
extension WeightScope {
    /// `nn.Linear(inputs, outputs)`: `x [..., inputs] -> [..., outputs]`.
    public func linear(_ x: Tensor, _ inputs: Int, _ outputs: Int, bias: Bool = true) throws -> Tensor {
        try graph.linear(x, weight: weight("weight", [outputs, inputs]), bias: bias ? weight("bias", [outputs]) : nil)
    }

    /// `nn.LayerNorm(width)` over the last dim.
    public func layerNorm(_ x: Tensor, _ width: Int, epsilon: Float, affine: Bool = true) throws -> Tensor {
        try graph.layerNorm(x, weight: affine ? weight("weight", [width]) : nil, bias: affine ? weight("bias", [width]) : nil, epsilon: epsilon)
    }

    /// `nn.GroupNorm(groups, channels)` on `[N, C, ...]`, optionally followed by SiLU (fused).
    public func groupNorm(_ x: Tensor, groups: Int, channels: Int, epsilon: Float, silu: Bool = false) throws -> Tensor {
        try graph.groupNorm(x, groups: groups, weight: weight("weight", [channels]), bias: weight("bias", [channels]), epsilon: epsilon, silu: silu)
    }

    /// `nn.Conv2d(inputs, outputs, kernel, stride, padding)` on `[N, C, H, W]`.
    public func conv2d(_ x: Tensor, _ inputs: Int, _ outputs: Int, kernel: Int, stride: Int = 1, padding: Int = 0, bias: Bool = true) throws -> Tensor {
        try graph.conv2d(x, weight: weight("weight", [outputs, inputs, kernel, kernel]), bias: bias ? weight("bias", [outputs]) : nil,
                         stride: (stride, stride), padding: (padding, padding))
    }
}

extension Graph {
    /// `[B, L, H * D] -> [B, H, L, D]`: splits heads for attention.
    public func splitHeads(_ x: Tensor, heads: Int) throws -> Tensor {
        let (batch, length, width) = (x.shape[0], x.shape[1], x.shape[2])
        guard width % heads == 0 else { throw GraphError("splitHeads", "width \(width) of \(x.shape) not divisible by \(heads) heads") }
        return try permute(reshape(x, [batch, length, heads, width / heads]), [0, 2, 1, 3])
    }

    /// `[B, H, L, D] -> [B, L, H * D]`: merges heads after attention.
    public func mergeHeads(_ x: Tensor) throws -> Tensor {
        let (batch, heads, length, width) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        return try reshape(permute(x, [0, 2, 1, 3]), [batch, length, heads * width])
    }

    /// An activation by its Hugging Face config name (`gelu`, `quick_gelu`, `silu`, `gelu_pytorch_tanh`).
    public func activation(_ name: String, _ x: Tensor) throws -> Tensor {
        switch name {
        case "gelu": try gelu(x)
        case "quick_gelu": try quickGelu(x)
        case "silu", "swish": try silu(x)
        case "gelu_pytorch_tanh", "gelu_new", "gelu_fast": try gelu(x, approximateTanh: true)
        default: throw GraphError("activation", "unknown activation '\(name)'")
        }
    }
}
