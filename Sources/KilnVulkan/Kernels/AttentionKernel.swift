import KilnGraph

/// Dispatch for attention.comp, tiled attention with an online softmax (its header documents the
/// variants and the grid). The Lq x Lk score matrix never exists in memory.
enum AttentionKernel {
    static let queriesPerSubgroup = 16
    static let sharedRows = 64

    /// With `hasBias` the fourth argument is an additive bias `[B or 1, H, Lq, Lk]`; the variant
    /// gets `HAS_BIAS=1` and two more push constants, so the plain kernel is unchanged.
    /// With `tokenMajorHeads` H > 0 the tensors are `[B, L, H * D]` (`TOKEN_MAJOR=1`, one more push constant).
    static func dispatch(_ context: KernelContext, scale: Float, causal: Bool, hasBias: Bool = false, tokenMajorHeads: Int = 0) -> Dispatch {
        let q = context.argument(0), k = context.argument(1), v = context.argument(2)
        let tokenMajor = tokenMajorHeads > 0
        let headsPerBatch = tokenMajor ? tokenMajorHeads : q.shape[1]
        let batchHeads = q.shape[0] * headsPerBatch
        let queryLength = tokenMajor ? q.shape[1] : q.shape[2], keyLength = tokenMajor ? k.shape[1] : k.shape[2]
        let headDim = tokenMajor ? q.shape[2] / headsPerBatch : q.shape[3]
        let valueDim = tokenMajor ? v.shape[2] / headsPerBatch : v.shape[3]
        var constants = PushConstants()
        constants.address("q", q.address)
        constants.address("k", k.address)
        constants.address("v", v.address)
        constants.address("o", context.output.address)
        var layoutDefines: [(String, String)] = tokenMajor ? [("TOKEN_MAJOR", "1")] : []
        // Hidden keys are skipped, not multiplied by weight 0 (their values may be infinite).
        if causal { layoutDefines.append(("CAUSAL", "1")) }
        if hasBias {
            let bias = context.argument(3)
            constants.address("bias", bias.address)
            layoutDefines.append(("HAS_BIAS", "1"))
        }
        constants.uint("batchHeads", batchHeads)
        constants.uint("queryLength", queryLength)
        constants.uint("keyLength", keyLength)
        constants.uint("headDim", headDim)
        constants.uint("valueDim", valueDim)
        constants.float("scale", scale)
        constants.bool("causal", causal)
        if hasBias {
            // Bias head of batch-head bh is bh % biasHeads: a bias shared by the batch repeats every H.
            let bias = context.argument(3)
            constants.uint("biasHeads", bias.shape[0] == 1 ? headsPerBatch : batchHeads)
        }
        if tokenMajor { constants.uint("heads", headsPerBatch) }
        let heads = UInt32(min(batchHeads, 65535))
        if context.useRegisterBlockedKernels {
            let lanes = Int(context.device.subgroupSize)
            let maxValueDim = (valueDim + lanes - 1) / lanes * lanes
            let vectorD = headDim % 4 == 0 && context.allowsWideAccess([q, k])
            // Compact: one query per lane and one key per lane per block, an eighth of the unrolled
            // softmax and P.V code of the tuned 16 queries x 4 keys.
            let compact = context.useCompactTiles
            let queries = compact ? lanes : queriesPerSubgroup
            return Dispatch(
                file: "attention.comp",
                defines: context.storageDefines + layoutDefines + [("SHARED_MEMORY_TILES", "0"), context.subgroupDefine,
                                                   ("TILE_Q", "\(queries)"), ("MAX_VALUE_DIM", "\(maxValueDim)")]
                    + (compact ? [("KEYS_PER_LANE", "1")] : [])
                    + (vectorD ? [("KILN_WIDE_LOADS", "1"), ("VECTOR_D", "1")] : []),
                workgroupSize: [UInt32(lanes)], pushConstants: constants,
                groups: (UInt32((queryLength + queries - 1) / queries), heads, 1))
        }
        // Head dims are rounded up to a multiple of 8 so nearby sizes share one pipeline.
        let roundedHead = (headDim + 7) / 8 * 8, roundedValue = (valueDim + 7) / 8 * 8
        return Dispatch(
            file: "attention.comp",
            defines: context.storageDefines + layoutDefines + [("SHARED_MEMORY_TILES", "1"), ("MAX_HEAD_DIM", "\(roundedHead)"), ("MAX_VALUE_DIM", "\(roundedValue)")],
            workgroupSize: [], pushConstants: constants,
            groups: (UInt32(min((queryLength + sharedRows - 1) / sharedRows, 65535)), heads, 1))
    }
}
