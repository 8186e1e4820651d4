import KilnGraph

/// Dispatches for movement.comp. Permute, slice, concat and upsampling are all one strided copy
/// over a rank-6 box, so a single kernel serves them.
enum MovementKernels {
    static let file = "movement.comp"

    static func upsample(_ context: KernelContext) -> Dispatch {
        let input = context.argument(0).shape
        let (planes, height, width) = (input[0] * input[1], input[2], input[3])
        // Output [planes, H, 2, W, 2] reads input [planes, H, W] with stride 0 on the two "2" axes.
        let box = Shape([planes, height, 2, width, 2])
        return copy(context, box: box.dimensions, inputStrides: [height * width, width, 0, 1, 0],
                    outputStrides: box.strides, inputOffset: 0, outputOffset: 0)
    }

    static func concat(_ context: KernelContext, axis: Int) -> [Dispatch] {
        let outputStrides = context.output.shape.strides
        var offset = 0
        return context.inputs.indices.map { index in
            let input = context.inputs[index]
            let dispatch = copy(context, source: input, box: input.shape.dimensions, inputStrides: input.shape.strides,
                                outputStrides: outputStrides, inputOffset: 0, outputOffset: offset * outputStrides[axis])
            offset += input.shape[axis]
            return dispatch
        }
    }

    static func slice(_ context: KernelContext, axis: Int, start: Int) -> Dispatch {
        let inputStrides = context.argument(0).shape.strides
        return copy(context, box: context.output.shape.dimensions, inputStrides: inputStrides,
                    outputStrides: context.output.shape.strides, inputOffset: start * inputStrides[axis], outputOffset: 0)
    }

    static func permute(_ context: KernelContext, _ permutation: [Int]) -> Dispatch {
        let inputStrides = context.argument(0).shape.strides
        return copy(context, box: context.output.shape.dimensions, inputStrides: permutation.map { inputStrides[$0] },
                    outputStrides: context.output.shape.strides, inputOffset: 0, outputOffset: 0)
    }

    static func embedding(_ context: KernelContext) -> Dispatch {
        let table = context.argument(0)
        var constants = PushConstants()
        constants.address("table", table.address)
        constants.address("ids", context.argument(1).address)
        constants.address("y", context.output.address)
        constants.uint("count", context.output.shape.elementCount)
        constants.uint("vocabulary", table.shape[0])
        constants.uint("width", table.shape[1])
        return context.linearDispatch(file, defines: context.storageDefines + [("EMBEDDING", "1")], pushConstants: constants,
                                      count: context.output.shape.elementCount)
    }

    /// Rank of the copy box; callers with more dims are rejected when the graph is prepared.
    static let rank = 6

    private static func copy(
        _ context: KernelContext, source: TensorArgument? = nil, box: [Int], inputStrides: [Int], outputStrides: [Int],
        inputOffset: Int, outputOffset: Int
    ) -> Dispatch {
        let padding = rank - box.count
        let ones = [Int](repeating: 1, count: padding), zeros = [Int](repeating: 0, count: padding)
        var constants = PushConstants()
        constants.address("x", (source ?? context.argument(0)).address)
        constants.address("y", context.output.address)
        let count = box.reduce(1, *)
        constants.uint("count", count)
        constants.uint("inputOffset", inputOffset)
        constants.uint("outputOffset", outputOffset)
        constants.uints("dims", ones + box)
        constants.uints("inputStrides", zeros + inputStrides)
        constants.uints("outputStrides", zeros + outputStrides)
        return context.linearDispatch(file, defines: context.storageDefines + [("STRIDED_COPY", "1")], pushConstants: constants, count: count)
    }
}
