// Builders for elementwise ops and small fused elementwise patterns.

extension Graph {
    /// Numpy broadcasting of two shapes, or nil when they are incompatible.
    public static func broadcast(_ a: Shape, _ b: Shape) -> Shape? {
        let rank = max(a.rank, b.rank)
        var result = [Int](repeating: 1, count: rank)
        for axis in 0..<rank {
            let da = axis < rank - a.rank ? 1 : a.dimensions[axis - (rank - a.rank)]
            let db = axis < rank - b.rank ? 1 : b.dimensions[axis - (rank - b.rank)]
            guard da == db || da == 1 || db == 1 else { return nil }
            result[axis] = da == 1 ? db : da
        }
        return Shape(result)
    }

    public func binary(_ op: BinaryOperator, _ a: Tensor, _ b: Tensor) throws -> Tensor {
        try requireFloat(op.rawValue, a, b)
        guard let shape = Graph.broadcast(a.shape, b.shape) else {
            throw GraphError(op.rawValue, "shapes \(a.shape) and \(b.shape) do not broadcast")
        }
        return append(.binary(op), [a, b], shape: shape, dtype: a.dtype)
    }

    public func add(_ a: Tensor, _ b: Tensor) throws -> Tensor { try binary(.add, a, b) }
    public func sub(_ a: Tensor, _ b: Tensor) throws -> Tensor { try binary(.sub, a, b) }
    public func mul(_ a: Tensor, _ b: Tensor) throws -> Tensor { try binary(.mul, a, b) }

    public func unary(_ op: UnaryOperator, _ x: Tensor) throws -> Tensor {
        try requireFloat(op.rawValue, x)
        return append(.unary(op), [x], shape: x.shape, dtype: x.dtype)
    }

    public func silu(_ x: Tensor) throws -> Tensor { try unary(.silu, x) }
    public func gelu(_ x: Tensor, approximateTanh: Bool = false) throws -> Tensor {
        try unary(approximateTanh ? .geluTanh : .gelu, x)
    }
    public func quickGelu(_ x: Tensor) throws -> Tensor { try unary(.quickGelu, x) }

    /// `x * factor`.
    public func scale(_ x: Tensor, by factor: Float) throws -> Tensor {
        try requireFloat("scale", x)
        return append(.scale(factor), [x], shape: x.shape, dtype: x.dtype)
    }

    /// `min(max(x, lower), upper)`.
    public func clamp(_ x: Tensor, min lower: Float, max upper: Float) throws -> Tensor {
        try requireFloat("clamp", x)
        guard lower <= upper else { throw GraphError("clamp", "lower bound \(lower) above upper bound \(upper)") }
        return append(.clamp(lower: lower, upper: upper), [x], shape: x.shape, dtype: x.dtype)
    }

    /// `x [..., 2N] -> [..., N]`: first half times GELU(second half), as diffusers' GEGLU.
    public func geglu(_ x: Tensor) throws -> Tensor {
        try requireFloat("geglu", x)
        guard x.shape.rank >= 1, x.shape.last % 2 == 0 else {
            throw GraphError("geglu", "last dim of \(x.shape) must be even")
        }
        return append(.geglu, [x], shape: Shape(x.shape.dimensions.dropLast() + [x.shape.last / 2]), dtype: x.dtype)
    }

    /// `x [B, L, D] * (1 + scale [B, D]) + shift [B, D]`.
    public func modulate(_ x: Tensor, shift: Tensor, scale: Tensor) throws -> Tensor {
        let op = "modulate"
        try requireFloat(op, x, shift, scale)
        try requireRank(op, x, 3, "input")
        try requireShape(op, shift, [x.shape[0], x.shape[2]], "shift")
        try requireShape(op, scale, [x.shape[0], x.shape[2]], "scale")
        return append(.modulate, [x, shift, scale], shape: x.shape, dtype: x.dtype)
    }

    /// Rotary position embedding on interleaved pairs of `x [B, H, L, D]` with `cos, sin [L, D]`.
    public func rope(_ x: Tensor, cos: Tensor, sin: Tensor) throws -> Tensor {
        let op = "rope"
        try requireFloat(op, x, cos, sin)
        try requireRank(op, x, 4, "input")
        guard x.shape[3] % 2 == 0 else { throw GraphError(op, "head dim of \(x.shape) must be even") }
        try requireShape(op, cos, [x.shape[2], x.shape[3]], "cos")
        try requireShape(op, sin, [x.shape[2], x.shape[3]], "sin")
        return append(.rope, [x, cos, sin], shape: x.shape, dtype: x.dtype)
    }

    /// Sinusoidal timestep embedding `t [N] -> [N, dimension]`.
    public func timestepEmbedding(_ t: Tensor, _ parameters: TimestepEmbedding) throws -> Tensor {
        let op = "timestepEmbedding"
        try requireFloat(op, t)
        try requireRank(op, t, 1, "timesteps")
        guard parameters.dimension > 1 else { throw GraphError(op, "dimension \(parameters.dimension) must be at least 2") }
        return append(.timestepEmbedding(parameters), [t], shape: [t.shape[0], parameters.dimension], dtype: t.dtype)
    }

    /// Changes the storage type.
    public func cast(_ x: Tensor, to dtype: DType) throws -> Tensor {
        guard x.dtype.isFloatingPoint, dtype.isFloatingPoint else {
            throw GraphError("cast", "only floating-point casts are supported, \(x.dtype.shortName) -> \(dtype.shortName)")
        }
        if x.dtype == dtype { return x }
        return append(.cast(dtype), [x], shape: x.shape, dtype: dtype)
    }
}
