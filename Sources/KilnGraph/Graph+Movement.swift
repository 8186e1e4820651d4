// Builders for ops that move data without arithmetic.

extension Graph {
    /// Nearest-neighbour 2x upsampling, `[N, C, H, W] -> [N, C, 2H, 2W]`.
    public func upsampleNearest2x(_ x: Tensor) throws -> Tensor {
        try requireRank("upsample", x, 4, "input")
        let s = x.shape
        return append(.upsampleNearest2x, [x], shape: [s[0], s[1], 2 * s[2], 2 * s[3]], dtype: x.dtype)
    }

    /// Concatenates along `axis`; every other dim must agree.
    public func concat(_ tensors: [Tensor], axis: Int) throws -> Tensor {
        let op = "concat"
        guard let first = tensors.first else { throw GraphError(op, "needs at least one input") }
        let resolved = try normalizedAxis(op, axis, rank: first.shape.rank)
        var total = 0
        for tensor in tensors {
            guard tensor.dtype == first.dtype, tensor.shape.rank == first.shape.rank else {
                throw GraphError(op, "\(tensor) does not match \(first)")
            }
            for d in 0..<first.shape.rank where d != resolved && tensor.shape[d] != first.shape[d] {
                throw GraphError(op, "shapes \(first.shape) and \(tensor.shape) differ outside axis \(resolved)")
            }
            total += tensor.shape[resolved]
        }
        if tensors.count == 1 { return first }
        var dims = first.shape.dimensions
        dims[resolved] = total
        return append(.concat(axis: resolved), tensors, shape: Shape(dims), dtype: first.dtype)
    }

    /// `x.narrow(axis, start, length)`.
    public func slice(_ x: Tensor, axis: Int, start: Int, length: Int) throws -> Tensor {
        let op = "slice"
        let resolved = try normalizedAxis(op, axis, rank: x.shape.rank)
        guard start >= 0, length > 0, start + length <= x.shape[resolved] else {
            throw GraphError(op, "range \(start)..<\(start + length) outside dim \(resolved) of \(x.shape)")
        }
        var dims = x.shape.dimensions
        dims[resolved] = length
        return append(.slice(axis: resolved, start: start, length: length), [x], shape: Shape(dims), dtype: x.dtype)
    }

    /// Splits `axis` into `count` equal parts (torch.chunk with an even split).
    public func chunk(_ x: Tensor, _ count: Int, axis: Int) throws -> [Tensor] {
        let resolved = try normalizedAxis("chunk", axis, rank: x.shape.rank)
        guard count > 0, x.shape[resolved] % count == 0 else {
            throw GraphError("chunk", "dim \(resolved) of \(x.shape) does not split into \(count) equal parts")
        }
        let part = x.shape[resolved] / count
        return try (0..<count).map { try slice(x, axis: resolved, start: $0 * part, length: part) }
    }

    /// Output dim i is input dim `permutation[i]`.
    public func permute(_ x: Tensor, _ permutation: [Int]) throws -> Tensor {
        guard permutation.sorted() == Array(0..<x.shape.rank) else {
            throw GraphError("permute", "\(permutation) is not a permutation of the dims of \(x.shape)")
        }
        if permutation == Array(0..<x.shape.rank) { return x }
        return append(.permute(permutation), [x], shape: Shape(permutation.map { x.shape[$0] }), dtype: x.dtype)
    }

    /// Same elements in a new shape; `-1` infers one dim. A view: no data moves.
    public func reshape(_ x: Tensor, _ shape: Shape) throws -> Tensor {
        var dims = shape.dimensions
        if let inferred = dims.firstIndex(of: -1) {
            let known = dims.enumerated().filter { $0.offset != inferred }.reduce(1) { $0 * $1.element }
            guard known > 0, x.shape.elementCount % known == 0 else {
                throw GraphError("reshape", "cannot infer -1 in \(shape) for \(x.shape)")
            }
            dims[inferred] = x.shape.elementCount / known
        }
        let target = Shape(dims)
        guard target.elementCount == x.shape.elementCount, dims.allSatisfy({ $0 >= 0 }) else {
            throw GraphError("reshape", "\(x.shape) (\(x.shape.elementCount) elements) cannot become \(shape)")
        }
        if target == x.shape { return x }
        return append(.reshape(target), [x], shape: target, dtype: x.dtype)
    }

    /// Gathers rows: `table [V, D], ids (int32) [...] -> [..., D]`.
    public func embedding(_ table: Tensor, ids: Tensor) throws -> Tensor {
        let op = "embedding"
        try requireFloat(op, table)
        try requireRank(op, table, 2, "table")
        guard ids.dtype == .int32 else { throw GraphError(op, "ids must be int32, got \(ids.dtype.shortName)") }
        return append(.embedding, [table, ids], shape: Shape(ids.shape.dimensions + [table.shape[1]]), dtype: table.dtype)
    }
}
