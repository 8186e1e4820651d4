import KilnGraph

/// Dispatch for conv2d.comp, a direct implicit-GEMM convolution (its header documents the
/// variants and the grid): rows are output channels, columns output pixels.
enum ConvolutionKernel {
    static func dispatch(_ context: KernelContext, _ parameters: Convolution2D) -> Dispatch {
        let x = context.argument(0), weight = context.argument(1), output = context.output
        var constants = PushConstants()
        constants.address("input_", x.address)
        constants.address("weight", weight.address)
        constants.address("bias", parameters.hasBias ? context.argument(2).address : x.address)
        constants.address("output_", output.address)
        constants.uint("batch", x.shape[0])
        constants.uint("inChannels", x.shape[1])
        constants.uint("inHeight", x.shape[2])
        constants.uint("inWidth", x.shape[3])
        constants.uint("outChannels", output.shape[1])
        constants.uint("outHeight", output.shape[2])
        constants.uint("outWidth", output.shape[3])
        constants.uint("kernelHeight", weight.shape[2])
        constants.uint("kernelWidth", weight.shape[3])
        constants.uint("strideY", parameters.strideY)
        constants.uint("strideX", parameters.strideX)
        constants.uint("padY", parameters.paddingY)
        constants.uint("padX", parameters.paddingX)
        constants.bool("hasBias", parameters.hasBias)
        let addend = parameters.hasAddend ? context.inputs.last : nil
        let residual = addend?.shape == output.shape
        constants.address("addend", addend?.address ?? x.address)
        constants.uint("addendPlane", residual ? output.shape[2] * output.shape[3] : 1)
        constants.uint("addendPixel", residual ? 1 : 0)
        constants.bool("hasAddend", addend != nil)
        let pixels = output.shape[2] * output.shape[3], channels = output.shape[1]
        let batchGroups = UInt32(min(x.shape[0], 65535))
        if context.useRegisterBlockedKernels {
            let lanes = Int(context.device.subgroupSize)
            let columns = x.shape[0] * pixels
            // Batch folded into the columns: at 8x8 and 4x4 latents one image cannot fill the lanes.
            let window = !context.useCompactTiles && rowWindowApplies(context, parameters)
                ? RegisterTiling.rowWindow(outChannels: channels, batch: x.shape[0], outHeight: output.shape[2],
                                           outWidth: output.shape[3], lanes: lanes)
                : nil
            let tiling = window?.tiling
                ?? (context.useCompactTiles ? RegisterTiling.compact(lanes: lanes)
                    : RegisterTiling.choose(.convolution, columns: columns, rows: channels, lanes: lanes))
            let columnGroups = (columns + lanes * tiling.columnsPerLane - 1) / (lanes * tiling.columnsPerLane)
            var defines = context.storageDefines + [("SHARED_MEMORY_TILES", "0"), context.subgroupDefine,
                                                    ("TILE_M", "\(tiling.rows)"), ("TILE_N", "\(tiling.columnsPerLane)")]
            if let window {
                defines += [("KILN_WIDE_LOADS", "1"), ("ROW_WINDOW", "1"), ("KW", "\(weight.shape[3])"), ("SEGMENT", "\(window.segment)")]
            }
            return Dispatch(
                file: "conv2d.comp", defines: defines,
                workgroupSize: [UInt32(lanes)], pushConstants: constants,
                groups: (UInt32(columnGroups), UInt32(min((channels + tiling.rows - 1) / tiling.rows, 65535)), 1))
        }
        let tile = MatmulKernel.sharedTile
        return Dispatch(
            file: "conv2d.comp", defines: context.storageDefines + [("SHARED_MEMORY_TILES", "1")], workgroupSize: [],
            pushConstants: constants,
            groups: (UInt32(min((pixels + tile - 1) / tile, 65535)), UInt32(min((channels + tile - 1) / tile, 65535)), batchGroups))
    }

    /// conv2d.comp's ROW_WINDOW conditions that do not depend on the tile: 1- or 3-wide kernels
    /// keeping the width (stride 1, "same" padding), rows of whole 8-byte words, an aligned input.
    private static func rowWindowApplies(_ context: KernelContext, _ parameters: Convolution2D) -> Bool {
        let x = context.argument(0), kernelWidth = context.argument(1).shape[3]
        return context.allowsWideAccess([x]) && [1, 3].contains(kernelWidth) && parameters.strideX == 1
            && parameters.paddingX == kernelWidth / 2 && context.output.shape[3] == x.shape[3]
            && x.shape[3] % 4 == 0
    }
}
