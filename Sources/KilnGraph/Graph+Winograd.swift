// Winograd F(2x2, 3x3) convolution (Lavin & Gray, https://arxiv.org/abs/1509.09308): a 3x3 "same"
// convolution as 16 batched GEMMs over 2x2 output tiles, 2.25x fewer multiply-adds than the direct form.

extension Graph {
    /// `x [N, C, H, W] * weight [O, C, 3, 3]` with stride 1 and padding 1 (+ bias [O]) (+ addend)
    /// `-> [N, O, H, W]`, equal to `conv2d` up to rounding. The GEMMs are `linear`-shaped, tiles x
    /// channels against the transformed weights transposed: `[16, T, C] @ [16, O, C]ᵀ -> [16, T, O]`.
    /// The addend is conv2d's: `[N, O, H, W]` or `[N, O, 1, 1]`.
    public func winogradConvolution(_ x: Tensor, weight: Tensor, bias: Tensor?, addend: Tensor? = nil) throws -> Tensor {
        try requireRank("conv2d", x, 4, "input")
        guard weight.shape == [weight.shape[0], x.shape[1], 3, 3] else {
            throw GraphError("conv2d", "Winograd F(2x2, 3x3) needs a [O, \(x.shape[1]), 3, 3] weight for input \(x.shape), got \(weight.shape)")
        }
        let products = try matmul(winogradInput(x), winogradWeight(weight), transposeB: true)         // [16, T, O]
        return try winogradOutput(products, batch: x.shape[0], height: x.shape[2], width: x.shape[3], bias: bias, addend: addend)
    }

    /// `x [N, C, H, W] -> [16, T, C]`, T = N * ceil(H/2) * ceil(W/2): Bᵀ d B of each 4x4 patch.
    public func winogradInput(_ x: Tensor) throws -> Tensor {
        try requireFloat("winograd_input", x)
        try requireRank("winograd_input", x, 4, "input")
        let tiles = x.shape[0] * ((x.shape[2] + 1) / 2) * ((x.shape[3] + 1) / 2)
        return append(.winogradInput, [x], shape: [16, tiles, x.shape[1]], dtype: x.dtype)
    }

    /// `weight [O, C, 3, 3] -> [16, O, C]`: G g Gᵀ.
    public func winogradWeight(_ weight: Tensor) throws -> Tensor {
        try requireFloat("winograd_weight", weight)
        guard weight.shape.rank == 4, weight.shape[2] == 3, weight.shape[3] == 3 else {
            throw GraphError("winograd_weight", "weight must be [O, C, 3, 3], got \(weight.shape)")
        }
        return append(.winogradWeight, [weight], shape: [16, weight.shape[0], weight.shape[1]], dtype: weight.dtype)
    }

    /// `products [16, T, O] (+ bias [O]) (+ addend) -> [N, O, height, width]`: Aᵀ m A per tile.
    public func winogradOutput(
        _ products: Tensor, batch: Int, height: Int, width: Int, bias: Tensor? = nil, addend: Tensor? = nil
    ) throws -> Tensor {
        let op = "winograd_output"
        try requireFloat(op, products)
        let output = WinogradOutput(batch: batch, height: height, width: width, hasBias: bias != nil, hasAddend: addend != nil)
        let channels = products.shape.rank == 3 ? products.shape[2] : 0
        guard batch > 0, height > 0, width > 0, products.shape == [16, output.tiles, channels] else {
            throw GraphError(op, "products must be [16, \(output.tiles), O] for [\(batch), O, \(height), \(width)], got \(products.shape)")
        }
        var inputs = [products]
        if let bias {
            try requireFloat(op, products, bias)
            try requireShape(op, bias, [channels], "bias")
            inputs.append(bias)
        }
        let shape: Shape = [batch, channels, height, width]
        if let addend {
            try requireFloat(op, products, addend)
            guard addend.shape == shape || addend.shape == [batch, channels, 1, 1] else {
                throw GraphError(op, "addend must be \(shape) or [\(batch), \(channels), 1, 1], got \(addend.shape)")
            }
            inputs.append(addend)
        }
        return append(.winogradOutput(output), inputs, shape: shape, dtype: products.dtype)
    }

    /// This graph with each 3x3, stride-1, padding-1 conv2d that `chosen` accepts computed by
    /// `winogradConvolution`; returns the new graph and `outputs` in it.
    public func winogradConvolutions(outputs: [Tensor], chosen: (_ input: Shape, _ weight: Shape) -> Bool) -> (graph: Graph, outputs: [Tensor]) {
        rewritten(outputs: outputs) { node, mapped, graph in
            guard case .conv2d(let parameters) = node.operation, parameters.strideY == 1, parameters.strideX == 1,
                  parameters.paddingY == 1, parameters.paddingX == 1, parameters.extraPaddingBottom == 0, parameters.extraPaddingRight == 0
            else { return nil }
            let inputs = node.inputs.compactMap(mapped)
            guard inputs.count == node.inputs.count, inputs[1].shape.dimensions.suffix(2) == [3, 3],
                  chosen(inputs[0].shape, inputs[1].shape) else { return nil }
            return try? graph.winogradConvolution(
                inputs[0], weight: inputs[1], bias: parameters.hasBias ? inputs[2] : nil, addend: parameters.hasAddend ? inputs.last : nil)
        }
    }
}
