import KilnGraph

/// Dispatches for winograd.comp, the transforms around the GEMMs of `Graph.winogradConvolution`
/// (its header documents the layouts and the WIDE variants).
enum WinogradKernels {
    static let file = "winograd.comp"

    static func input(_ context: KernelContext, upsampled: Bool) -> Dispatch {
        let x = context.argument(0).shape, tiles = context.output.shape[1], scale = upsampled ? 2 : 1
        let (height, width) = (scale * x[2], scale * x[3])
        let wide = wideTiles(context, channels: x[1], width: width, tensors: [context.argument(0), context.output])
        var constants = PushConstants()
        constants.address("x", context.argument(0).address)
        constants.address("y", context.output.address)
        constants.uint("count", items(tiles * x[1], wide: wide))
        constants.uint("channels", x[1])
        constants.uint("height", height)
        constants.uint("width", width)
        constants.uint("tilesY", (height + 1) / 2)
        constants.uint("tilesX", (width + 1) / 2)
        constants.uint("tiles", tiles)
        return dispatch(context, "WINOGRAD_INPUT", constants: constants, count: items(tiles * x[1], wide: wide), wide: wide,
                        extra: [("UPSAMPLED", upsampled ? "1" : "0")])
    }

    static func weight(_ context: KernelContext) -> Dispatch {
        let pairs = context.output.shape[1] * context.output.shape[2]
        var constants = PushConstants()
        constants.address("x", context.argument(0).address)
        constants.address("y", context.output.address)
        constants.uint("count", pairs)
        return dispatch(context, "WINOGRAD_WEIGHT", constants: constants, count: pairs, wide: false)
    }

    static func output(_ context: KernelContext, _ parameters: WinogradOutput) -> Dispatch {
        let products = context.argument(0), output = context.output
        let (tiles, channels) = (products.shape[1], products.shape[2])
        let addend = parameters.hasAddend ? context.inputs.last : nil
        let residual = addend?.shape == output.shape
        let wide = wideTiles(context, channels: channels, width: parameters.width,
                             tensors: [products, output] + (residual ? [addend].compactMap { $0 } : []))
        var constants = PushConstants()
        constants.address("x", products.address)
        constants.address("y", output.address)
        constants.address("bias", parameters.hasBias ? context.argument(1).address : products.address)
        constants.address("addend", addend?.address ?? products.address)
        constants.uint("count", items(tiles * channels, wide: wide))
        constants.uint("channels", channels)
        constants.uint("height", parameters.height)
        constants.uint("width", parameters.width)
        constants.uint("tilesY", (parameters.height + 1) / 2)
        constants.uint("tilesX", (parameters.width + 1) / 2)
        constants.uint("tiles", tiles)
        constants.uint("addendPlane", residual ? parameters.height * parameters.width : 1)
        constants.uint("addendPixel", residual ? 1 : 0)
        constants.bool("hasBias", parameters.hasBias)
        constants.bool("hasAddend", addend != nil)
        return dispatch(context, "WINOGRAD_OUTPUT", constants: constants, count: items(tiles * channels, wide: wide), wide: wide)
    }

    /// The WIDE variants (four tiles x four channels per item through 64-bit words) where tile rows
    /// split into whole groups of four and every tensor touched wide is aligned.
    private static func wideTiles(_ context: KernelContext, channels: Int, width: Int, tensors: [TensorArgument]) -> Bool {
        channels % 4 == 0 && width % 8 == 0 && context.allowsWideAccess(tensors)
    }

    /// Items of a kernel over `pairs` (tile, channel) pairs: the pairs, or groups of 4 x 4 when wide.
    private static func items(_ pairs: Int, wide: Bool) -> Int { wide ? pairs / 16 : pairs }

    private static func dispatch(
        _ context: KernelContext, _ kernel: String, constants: PushConstants, count: Int, wide: Bool, extra: [(String, String)] = []
    ) -> Dispatch {
        let defines = context.storageDefines + [(kernel, "1")] + extra + (wide ? [("KILN_WIDE_LOADS", "1"), ("WIDE", "1")] : [])
        return context.linearDispatch(file, defines: defines, pushConstants: constants, count: count)
    }
}
