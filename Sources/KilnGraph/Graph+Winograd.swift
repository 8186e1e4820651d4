// Winograd F(2x2, 3x3) convolution (Lavin & Gray, https://arxiv.org/abs/1509.09308): a 3x3 "same"
// convolution as 16 batched GEMMs over 2x2 output tiles, 2.25x fewer multiply-adds than the direct form.

extension Graph {
    /// `x [N, C, H, W] * weight [O, C, 3, 3]` with stride 1 and padding 1 (+ bias [O]) (+ addend)
    /// `-> [N, O, H, W]`, equal to `conv2d` up to rounding. The GEMMs are `linear`-shaped, tiles x
    /// channels against the transformed weights transposed: `[16, T, C] @ [16, O, C]ᵀ -> [16, T, O]`.
    /// The addend is conv2d's: `[N, O, H, W]` or `[N, O, 1, 1]`. With `upsampled`, x is `[N, C, H/2, W/2]`
    /// and the convolution reads its nearest-neighbour 2x upsampling (as the VAE's upsamplers do).
    public func winogradConvolution(_ x: Tensor, weight: Tensor, bias: Tensor?, addend: Tensor? = nil, upsampled: Bool = false) throws -> Tensor {
        try requireRank("conv2d", x, 4, "input")
        guard weight.shape == [weight.shape[0], x.shape[1], 3, 3] else {
            throw GraphError("conv2d", "Winograd F(2x2, 3x3) needs a [O, \(x.shape[1]), 3, 3] weight for input \(x.shape), got \(weight.shape)")
        }
        let scale = upsampled ? 2 : 1
        let products = try matmul(winogradInput(x, upsampled: upsampled), winogradWeight(weight), transposeB: true)   // [16, T, O]
        return try winogradOutput(products, batch: x.shape[0], height: scale * x.shape[2], width: scale * x.shape[3], bias: bias, addend: addend)
    }

    /// `x [N, C, H, W] -> [16, T, C]`, T = N * ceil(H/2) * ceil(W/2): Bᵀ d B of each 4x4 patch; with
    /// `upsampled`, of x's nearest-neighbour 2x upsampling (T = N * H * W).
    public func winogradInput(_ x: Tensor, upsampled: Bool = false) throws -> Tensor {
        try requireFloat("winograd_input", x)
        try requireRank("winograd_input", x, 4, "input")
        let (height, width) = upsampled ? (2 * x.shape[2], 2 * x.shape[3]) : (x.shape[2], x.shape[3])
        let tiles = x.shape[0] * ((height + 1) / 2) * ((width + 1) / 2)
        return append(.winogradInput(upsampled: upsampled), [x], shape: [16, tiles, x.shape[1]], dtype: x.dtype)
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
        let shape: Shape = [batch, channels, height, width]
        let inputs = try [products] + convolutionExtras(op, bias: bias, addend: addend, like: products, output: shape)
        return append(.winogradOutput(output), inputs, shape: shape, dtype: products.dtype)
    }

    /// This graph with each 3x3, stride-1, padding-1 conv2d that `chosen` accepts computed by
    /// `winogradConvolution`, reading through a nearest-neighbour upsampling that nothing else reads
    /// instead of running it; returns the new graph and `outputs` in it.
    public func winogradConvolutions(outputs: [Tensor], chosen: (_ input: Shape, _ weight: Shape) -> Bool) -> (graph: Graph, outputs: [Tensor]) {
        let foldable = readOnce(outputs: outputs)
        return rewritten(outputs: outputs) { node, mapped, graph in
            guard case .conv2d(let parameters) = node.operation, parameters.strideY == 1, parameters.strideX == 1,
                  parameters.paddingY == 1, parameters.paddingX == 1, parameters.extraPaddingBottom == 0, parameters.extraPaddingRight == 0
            else { return nil }
            var inputs = node.inputs.compactMap(mapped)
            guard inputs.count == node.inputs.count, inputs[1].shape.dimensions.suffix(2) == [3, 3],
                  chosen(inputs[0].shape, inputs[1].shape) else { return nil }
            let source = nodes[node.inputs[0]]
            var upsampled = false
            if case .upsampleNearest2x = source.operation, foldable(source.id), let low = mapped(source.inputs[0]) {
                (inputs[0], upsampled) = (low, true)
            }
            return try? graph.winogradConvolution(
                inputs[0], weight: inputs[1], bias: parameters.hasBias ? inputs[2] : nil, addend: parameters.hasAddend ? inputs.last : nil,
                upsampled: upsampled)
        }
    }
}
