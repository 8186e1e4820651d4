import KilnGraph

/// Dispatches for normalization.comp: one workgroup per row (a group, or a last-dim vector).
enum NormalizationKernels {
    static let file = "normalization.comp"

    /// Workgroup size: 64 lanes on CPU devices keep barrier cost low; 256 on GPUs.
    static func workgroup(_ context: KernelContext) -> Int { context.prefersRegisterBlocking ? 64 : 256 }

    static func groupNorm(_ context: KernelContext, groups: Int, epsilon: Float, silu: Bool) -> Dispatch {
        let shape = context.output.shape
        let rows = shape[0] * groups
        var constants = PushConstants()
        constants.address("x", context.argument(0).address)
        constants.address("weight", context.argument(1).address)
        constants.address("bias", context.argument(2).address)
        constants.address("y", context.output.address)
        constants.uint("rows", rows)
        constants.uint("channelsPerGroup", shape[1] / groups)
        constants.uint("spatial", shape.count(from: 2))
        constants.uint("groups", groups)
        constants.float("epsilon", epsilon)
        let wide = wideRows(context, width: shape.count(from: 2), tensors: [0, 1, 2])
        return rowDispatch(context, defines: [("GROUP_NORM", "1"), ("SILU", silu ? "1" : "0")] + wide, constants: constants, rows: rows)
    }

    /// LAYER_NORM, RMS_NORM or SOFTMAX over the last dim. Missing weight/bias slots get the
    /// input's address, which the kernel never reads because HAS_WEIGHT/HAS_BIAS are 0.
    static func rowNorm(_ context: KernelContext, kind: String, epsilon: Float, hasWeight: Bool, hasBias: Bool) -> Dispatch {
        let shape = context.output.shape
        let rows = shape.elementCount / max(shape.last, 1)
        let x = context.argument(0).address
        var constants = PushConstants()
        constants.address("x", x)
        constants.address("weight", hasWeight ? context.argument(1).address : x)
        constants.address("bias", hasBias ? context.argument(hasWeight ? 2 : 1).address : x)
        constants.address("y", context.output.address)
        constants.uint("rows", rows)
        constants.uint("width", shape.last)
        constants.float("epsilon", epsilon)
        var defines = [(kind, "1"), ("HAS_WEIGHT", hasWeight ? "1" : "0"), ("HAS_BIAS", hasBias ? "1" : "0")]
        if kind == "LAYER_NORM" { defines += wideRows(context, width: shape.last, tensors: Array(context.inputs.indices)) }
        return rowDispatch(context, defines: defines, constants: constants, rows: rows)
    }

    /// WIDE_ROWS where it is measured (CPU devices, whose loads are per-lane loops) and allowed: rows
    /// of whole 8-byte words, the output and the given inputs 8-byte aligned.
    private static func wideRows(_ context: KernelContext, width: Int, tensors: [Int]) -> [(String, String)] {
        guard context.prefersRegisterBlocking, width % 4 == 0,
              context.allowsWideAccess(tensors.map(context.argument) + [context.output]) else { return [] }
        return [("KILN_WIDE_LOADS", "1"), ("WIDE_ROWS", "1")]
    }

    private static func rowDispatch(_ context: KernelContext, defines: [(String, String)], constants: PushConstants, rows: Int) -> Dispatch {
        Dispatch(file: file, defines: context.storageDefines + defines, workgroupSize: [UInt32(workgroup(context))],
                 pushConstants: constants, groups: (UInt32(min(max(rows, 1), 65535)), 1, 1))
    }
}
