import KilnGraph

/// Dispatch for matmul.comp (its header documents the variants and the grid).
enum MatmulKernel {
    /// Register path tiles without four-deep dot products, best on lavapipe: 24 rows x (lanes x 12)
    /// columns per workgroup.
    static let registerTile = (rows: 24, columns: 12)
    /// Shared-memory path: 64 x 64 output tiles on a fixed 16 x 16 workgroup.
    static let sharedTile = 64

    static func dispatch(_ context: KernelContext, transposeA: Bool, transposeB: Bool, hasBias: Bool, hasAddend: Bool) -> Dispatch {
        let a = context.argument(0), b = context.argument(1), output = context.output
        let m = output.shape[-2], n = output.shape[-1]
        let k = transposeA ? a.shape[-2] : a.shape[-1]
        let batch = output.shape.count(before: output.shape.rank - 2)
        var constants = PushConstants()
        constants.address("a", a.address)
        constants.address("b", b.address)
        constants.address("bias", hasBias ? context.argument(2).address : a.address)
        constants.address("c", output.address)
        constants.uint("M", m)
        constants.uint("N", n)
        constants.uint("K", k)
        constants.uint("batchCount", batch)
        constants.uint("batchStrideA", m * k)
        constants.uint("batchStrideB", b.shape.rank == 2 ? 0 : k * n)
        constants.uint("batchStrideC", m * n)
        constants.bool("hasBias", hasBias)
        let addend = hasAddend ? context.inputs.last : nil
        constants.address("addend", addend?.address ?? a.address)
        constants.bool("hasAddend", addend != nil)
        var defines = context.storageDefines + [("TRANSPOSE_A", transposeA ? "1" : "0"), ("TRANSPOSE_B", transposeB ? "1" : "0")]
        let batchGroups = UInt32(min(batch, 65535))
        if context.useRegisterBlockedKernels {
            let lanes = Int(context.device.subgroupSize)
            let wide = wideAccess(context, a: a, b: b, addend: addend, k: k, n: n, transposeA: transposeA, transposeB: transposeB)
            // Four-deep dot products (VECTOR_K with TRANSPOSE_B) pay for large tiles; the other paths keep 24 x 12.
            let tile = context.useCompactTiles ? RegisterTiling.compact(lanes: lanes)
                : wide.vectorK && transposeB
                ? RegisterTiling.choose(.matmulFourDeep, columns: n, rows: m, lanes: lanes, minimumWorkgroups: (8 + batch - 1) / batch)
                : RegisterTiling(rows: registerTile.rows, columnsPerLane: registerTile.columns)
            defines += [("SHARED_MEMORY_TILES", "0"), context.subgroupDefine, ("TILE_M", "\(tile.rows)"), ("TILE_N", "\(tile.columnsPerLane)")]
            if wide.vectorK || wide.vectorN || wide.store {
                defines += [("KILN_WIDE_LOADS", "1"), ("VECTOR_K", wide.vectorK ? "1" : "0"), ("VECTOR_N", wide.vectorN ? "1" : "0"),
                            ("WIDE_STORE", wide.store ? "1" : "0")]
            }
            let columnsPerGroup = lanes * tile.columnsPerLane
            return Dispatch(
                file: "matmul.comp", defines: defines, workgroupSize: [UInt32(lanes)], pushConstants: constants,
                groups: (UInt32((n + columnsPerGroup - 1) / columnsPerGroup), UInt32(min((m + tile.rows - 1) / tile.rows, 65535)), batchGroups))
        }
        defines.append(("SHARED_MEMORY_TILES", "1"))
        return Dispatch(
            file: "matmul.comp", defines: defines, workgroupSize: [], pushConstants: constants,
            groups: (UInt32(min((n + sharedTile - 1) / sharedTile, 65535)), UInt32(min((m + sharedTile - 1) / sharedTile, 65535)), batchGroups))
    }

    /// Which of matmul.comp's VECTOR_K / VECTOR_N / WIDE_STORE the shape and the tensors' alignment allow.
    private static func wideAccess(
        _ context: KernelContext, a: TensorArgument, b: TensorArgument, addend: TensorArgument?, k: Int, n: Int,
        transposeA: Bool, transposeB: Bool
    ) -> (vectorK: Bool, vectorN: Bool, store: Bool) {
        let vectorK = !transposeA && k % 4 == 0 && context.allowsWideAccess(transposeB ? [a, b] : [a])
        let vectorN = !transposeB && n % 4 == 0 && context.allowsWideAccess([b])
        let store = n % 4 == 0 && context.allowsWideAccess([context.output] + (addend.map { [$0] } ?? []))
        return (vectorK, vectorN, store)
    }
}
