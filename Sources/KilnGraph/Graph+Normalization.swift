// Builders for normalisations and softmax. Statistics are always computed in f32.

extension Graph {
    /// `x [N, C, *]` normalised per (sample, group of C/groups channels), then `* weight[C] + bias[C]`,
    /// then SiLU when `silu` (the fused GroupNorm+SiLU of every ResNet block).
    public func groupNorm(_ x: Tensor, groups: Int, weight: Tensor, bias: Tensor, epsilon: Float, silu: Bool = false) throws -> Tensor {
        let op = "groupNorm"
        try requireFloat(op, x, weight, bias)
        guard x.shape.rank >= 2 else { throw GraphError(op, "input needs rank >= 2 ([N, C, ...]), got \(x.shape)") }
        let channels = x.shape[1]
        guard groups > 0, channels % groups == 0 else {
            throw GraphError(op, "channels \(channels) not divisible by groups \(groups)")
        }
        try requireShape(op, weight, [channels], "weight")
        try requireShape(op, bias, [channels], "bias")
        return append(.groupNorm(groups: groups, epsilon: epsilon, silu: silu), [x, weight, bias], shape: x.shape, dtype: x.dtype)
    }

    /// LayerNorm over the last dim of `x [..., D]`, with optional `weight [D]` and `bias [D]`.
    public func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, epsilon: Float) throws -> Tensor {
        let op = "layerNorm"
        try requireFloat(op, x)
        var inputs = [x]
        for (parameter, role) in [(weight, "weight"), (bias, "bias")] {
            if let parameter {
                try requireFloat(op, x, parameter)
                try requireShape(op, parameter, [x.shape.last], role)
                inputs.append(parameter)
            }
        }
        return append(.layerNorm(epsilon: epsilon, hasWeight: weight != nil, hasBias: bias != nil), inputs, shape: x.shape, dtype: x.dtype)
    }

    /// RMSNorm over the last dim of `x [..., D]`, optional `weight [D]`.
    public func rmsNorm(_ x: Tensor, weight: Tensor?, epsilon: Float) throws -> Tensor {
        let op = "rmsNorm"
        try requireFloat(op, x)
        var inputs = [x]
        if let weight {
            try requireFloat(op, x, weight)
            try requireShape(op, weight, [x.shape.last], "weight")
            inputs.append(weight)
        }
        return append(.rmsNorm(epsilon: epsilon, hasWeight: weight != nil), inputs, shape: x.shape, dtype: x.dtype)
    }

    /// Softmax over the last dim.
    public func softmax(_ x: Tensor) throws -> Tensor {
        try requireFloat("softmax", x)
        return append(.softmax, [x], shape: x.shape, dtype: x.dtype)
    }
}
