// Builders for the ops that do the FLOPs: matmul, linear, conv2d, attention.

extension Graph {
    /// `a [..., M, K] @ b [..., K, N] (+ bias [N]) (+ addend [..., M, N]) -> [..., M, N]`. With
    /// `transposeA`/`transposeB` the operand is stored `[..., K, M]` / `[..., N, K]`. `b` has a's
    /// batch dims or rank 2. The addend is a residual summed in f32 with the product (one rounding).
    public func matmul(
        _ a: Tensor, _ b: Tensor, bias: Tensor? = nil, addend: Tensor? = nil, transposeA: Bool = false, transposeB: Bool = false
    ) throws -> Tensor {
        let op = "matmul"
        try requireFloat(op, a, b)
        guard a.shape.rank >= 2, b.shape.rank >= 2 else {
            throw GraphError(op, "operands need rank >= 2, got \(a.shape) and \(b.shape)")
        }
        let m = transposeA ? a.shape[-1] : a.shape[-2]
        let k = transposeA ? a.shape[-2] : a.shape[-1]
        let kB = transposeB ? b.shape[-1] : b.shape[-2]
        let n = transposeB ? b.shape[-2] : b.shape[-1]
        guard k == kB else {
            throw GraphError(op, "inner dims differ: \(a.shape)\(transposeA ? "ᵀ" : "") @ \(b.shape)\(transposeB ? "ᵀ" : "") (\(k) vs \(kB))")
        }
        let batch = Array(a.shape.dimensions.dropLast(2))
        guard b.shape.rank == 2 || Array(b.shape.dimensions.dropLast(2)) == batch else {
            throw GraphError(op, "batch dims of \(b.shape) must match \(a.shape) or be absent")
        }
        var inputs = [a, b]
        if let bias {
            try requireFloat(op, a, bias)
            try requireShape(op, bias, [n], "bias")
            inputs.append(bias)
        }
        let shape = Shape(batch + [m, n])
        if let addend {
            try requireFloat(op, a, addend)
            try requireShape(op, addend, shape, "addend")
            inputs.append(addend)
        }
        return append(
            .matmul(transposeA: transposeA, transposeB: transposeB, hasBias: bias != nil, hasAddend: addend != nil), inputs,
            shape: shape, dtype: a.dtype)
    }

    /// PyTorch's `nn.Linear`: `x [..., K] @ weight[N, K]ᵀ (+ bias [N]) -> [..., N]`.
    public func linear(_ x: Tensor, weight: Tensor, bias: Tensor?) throws -> Tensor {
        guard weight.shape.rank == 2, x.shape.rank >= 1, x.shape.last == weight.shape[1] else {
            throw GraphError("linear", "input \(x.shape) does not match weight \(weight.shape) (expects [N, \(x.shape.last)])")
        }
        let rows = x.shape.count(before: x.shape.rank - 1)
        let flat = try reshape(x, [rows, x.shape.last])
        let product = try matmul(flat, weight, bias: bias, transposeB: true)
        return try reshape(product, Shape(x.shape.dimensions.dropLast() + [weight.shape[0]]))
    }

    /// `x [N, C, H, W] * weight [O, C, kh, kw] (+ bias [O]) (+ addend) -> [N, O, OH, OW]`,
    /// `OH = (H + 2 pad + extraBottom - kh) / stride + 1`. The addend, summed in f32 (one rounding),
    /// is `[N, O, OH, OW]` (a residual) or `[N, O, 1, 1]` (a per-image channel bias).
    public func conv2d(
        _ x: Tensor, weight: Tensor, bias: Tensor?, addend: Tensor? = nil, stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0),
        extraPadding: (bottom: Int, right: Int) = (0, 0)
    ) throws -> Tensor {
        let op = "conv2d"
        try requireFloat(op, x, weight)
        try requireRank(op, x, 4, "input")
        try requireRank(op, weight, 4, "weight")
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (o, kh, kw) = (weight.shape[0], weight.shape[2], weight.shape[3])
        guard weight.shape[1] == c else {
            throw GraphError(op, "weight \(weight.shape) expects \(weight.shape[1]) input channels, input \(x.shape) has \(c)")
        }
        guard stride.0 > 0, stride.1 > 0, padding.0 >= 0, padding.1 >= 0, extraPadding.bottom >= 0, extraPadding.right >= 0 else {
            throw GraphError(op, "stride \(stride) must be positive and padding \(padding) non-negative")
        }
        let paddedHeight = h + 2 * padding.0 + extraPadding.bottom, paddedWidth = w + 2 * padding.1 + extraPadding.right
        let outHeight = (paddedHeight - kh) / stride.0 + 1
        let outWidth = (paddedWidth - kw) / stride.1 + 1
        guard paddedHeight >= kh, paddedWidth >= kw else {
            throw GraphError(op, "kernel \(kh)x\(kw) larger than padded input \(x.shape) with padding \(padding)")
        }
        let shape: Shape = [n, o, outHeight, outWidth]
        let inputs = try [x, weight] + convolutionExtras(op, bias: bias, addend: addend, like: x, output: shape)
        let parameters = Convolution2D(stride: stride, padding: padding, extraPadding: extraPadding, hasBias: bias != nil, hasAddend: addend != nil)
        return append(.conv2d(parameters), inputs, shape: shape, dtype: x.dtype)
    }

    /// A convolution's optional inputs, checked, in input order: `bias [O]`, then the addend, of
    /// `output`'s shape (a residual) or `[N, O, 1, 1]` (a per-image channel bias); both in x's type.
    func convolutionExtras(_ op: String, bias: Tensor?, addend: Tensor?, like x: Tensor, output: Shape) throws -> [Tensor] {
        if let bias {
            try requireFloat(op, x, bias)
            try requireShape(op, bias, [output[1]], "bias")
        }
        if let addend {
            try requireFloat(op, x, addend)
            guard addend.shape == output || addend.shape == [output[0], output[1], 1, 1] else {
                throw GraphError(op, "addend must be \(output) or [\(output[0]), \(output[1]), 1, 1], got \(addend.shape)")
            }
        }
        return [bias, addend].compactMap { $0 }
    }

    /// Scaled dot-product attention, `q [B, H, Lq, D], k [B, H, Lk, D], v [B, H, Lk, Dv] ->
    /// [B, H, Lq, Dv]`. `scale` defaults to `1/sqrt(D)`. An additive `bias [B or 1, H, Lq, Lk]`
    /// (T5's relative position bias) joins the scaled scores before the softmax.
    public func attention(_ q: Tensor, _ k: Tensor, _ v: Tensor, scale: Float? = nil, causal: Bool = false, bias: Tensor? = nil) throws -> Tensor {
        let op = "attention"
        try requireFloat(op, q, k, v)
        for (tensor, role) in [(q, "q"), (k, "k"), (v, "v")] { try requireRank(op, tensor, 4, role) }
        let (b, h, lq, d) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3])
        guard k.shape[0] == b, k.shape[1] == h, k.shape[3] == d else {
            throw GraphError(op, "k \(k.shape) does not match q \(q.shape) in batch, heads or head dim")
        }
        guard v.shape[0] == b, v.shape[1] == h, v.shape[2] == k.shape[2] else {
            throw GraphError(op, "v \(v.shape) does not match k \(k.shape) in batch, heads or length")
        }
        let inputs = try [q, k, v] + checkedAttentionBias(bias, q: q, k: k, batch: b, heads: h, queries: lq, keys: k.shape[2])
        let resolvedScale = scale ?? 1 / Float(d).squareRoot()
        return append(.attention(scale: resolvedScale, causal: causal, hasBias: bias != nil), inputs, shape: [b, h, lq, v.shape[3]], dtype: q.dtype)
    }

    /// `attention` on tensors as linear layers lay them out: `q [B, Lq, H * D], k [B, Lk, H * D],
    /// v [B, Lk, H * Dv] -> [B, Lq, H * Dv]`, equal to splitting the heads, attending and merging
    /// them again, without the permutes. `bias` is `[B or 1, H, Lq, Lk]` as for `attention`.
    public func multiHeadAttention(
        _ q: Tensor, _ k: Tensor, _ v: Tensor, heads: Int, scale: Float? = nil, causal: Bool = false, bias: Tensor? = nil
    ) throws -> Tensor {
        let op = "attention"
        try requireFloat(op, q, k, v)
        for (tensor, role) in [(q, "q"), (k, "k"), (v, "v")] { try requireRank(op, tensor, 3, role) }
        let (b, lq, width) = (q.shape[0], q.shape[1], q.shape[2])
        guard heads > 0, width % heads == 0, v.shape[2] % heads == 0 else {
            throw GraphError(op, "q \(q.shape) and v \(v.shape) widths must divide into \(heads) heads")
        }
        guard k.shape[0] == b, k.shape[2] == width, v.shape[0] == b, v.shape[1] == k.shape[1] else {
            throw GraphError(op, "k \(k.shape) and v \(v.shape) do not match q \(q.shape) in batch, width or length")
        }
        let inputs = try [q, k, v] + checkedAttentionBias(bias, q: q, k: k, batch: b, heads: heads, queries: lq, keys: k.shape[1])
        let resolvedScale = scale ?? 1 / Float(width / heads).squareRoot()
        return append(.attention(scale: resolvedScale, causal: causal, hasBias: bias != nil, tokenMajorHeads: heads), inputs,
                      shape: [b, lq, v.shape[2]], dtype: q.dtype)
    }

    /// `[bias]` after checking it is `[batch or 1, heads, queries, keys]` in q's type; `[]` without one.
    private func checkedAttentionBias(
        _ bias: Tensor?, q: Tensor, k: Tensor, batch: Int, heads: Int, queries: Int, keys: Int
    ) throws -> [Tensor] {
        guard let bias else { return [] }
        let op = "attention"
        try requireFloat(op, q, bias)
        try requireRank(op, bias, 4, "bias")
        guard bias.shape[0] == batch || bias.shape[0] == 1, bias.shape[1] == heads, bias.shape[2] == queries, bias.shape[3] == keys else {
            throw GraphError(op, "bias \(bias.shape) must be [\(batch) or 1, \(heads), \(queries), \(keys)] for q \(q.shape) and k \(k.shape)")
        }
        return [bias]
    }
}
