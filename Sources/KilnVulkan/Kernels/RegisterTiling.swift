/// Register-path tile shapes for conv2d.comp and matmul.comp, chosen per dispatch from the output
/// size: rows (TILE_M) are output channels / matrix rows, columns (TILE_N) are per lane.
///
/// On lavapipe every tensor load is a loop over the lanes and the accumulators live on the stack, so a
/// tile's cost is set by its loads and accumulator updates per multiply-add. The U-Net's deep
/// levels have few output columns (4x4 x batch 2 = 32) and many channels: a fixed tile leaves most
/// lanes clamped onto the last column there, so the column width is fitted to the columns and the
/// rows grow to keep the multiply-adds per load.
struct RegisterTiling: Equatable {
    /// Rows per workgroup (TILE_M), a multiple of the subgroup size.
    var rows: Int
    /// Output columns per lane (TILE_N).
    var columnsPerLane: Int

    /// What a kernel's register path measured best with on lavapipe.
    struct Profile {
        /// Most accumulators per lane (rows x columnsPerLane) before spilling stops paying.
        var accumulatorBudget: Int
        /// Most rows one lane fetches (TILE_M / lanes).
        var maximumRowGroups: Int
        /// Column widths per lane with their time per column relative to the best.
        var columnWidths: [(columnsPerLane: Int, relativeCost: Double)]
    }

    /// The smallest maxComputeWorkGroupCount Vulkan allows; the column tiles are the grid's X.
    static let maximumColumnGroups = 65535

    /// The tile for an output of `columns` by `rows` on `lanes`-wide subgroups, keeping at least
    /// `minimumWorkgroups` workgroups when it can so every lavapipe thread has work until the end
    /// of the dispatch.
    static func choose(_ profile: Profile, columns: Int, rows outputRows: Int, lanes: Int, minimumWorkgroups: Int = 8) -> RegisterTiling {
        // Columns past the end still cost a lane each (clamped loads): pick the width with the
        // least padded work.
        func cost(_ width: (columnsPerLane: Int, relativeCost: Double)) -> Double {
            Double(padded(columns, to: lanes * width.columnsPerLane)) * width.relativeCost
        }
        // The grid's X count (column tiles) may not pass maxComputeWorkGroupCount: very large
        // outputs (a 2048x2048 VAE layer) take the widest tile.
        let fitting = profile.columnWidths.filter {
            (columns + lanes * $0.columnsPerLane - 1) / (lanes * $0.columnsPerLane) <= maximumColumnGroups
        }
        let columnsPerLane = fitting.min { cost($0) < cost($1) }?.columnsPerLane
            ?? profile.columnWidths.map(\.columnsPerLane).max() ?? 16
        var rows = max(lanes, min(profile.accumulatorBudget / columnsPerLane / lanes, profile.maximumRowGroups) * lanes)
        rows = min(rows, padded(outputRows, to: lanes))
        let columnTiles = (columns + lanes * columnsPerLane - 1) / (lanes * columnsPerLane)
        while rows > lanes && columnTiles * ((outputRows + rows - 1) / rows) < minimumWorkgroups { rows -= lanes }
        return RegisterTiling(rows: rows, columnsPerLane: columnsPerLane)
    }

    /// conv2d.comp's ROW_WINDOW tile for an output of `outChannels` x `batch` images of `outHeight` x
    /// `outWidth`: SEGMENT-pixel row pieces, LANE_ROWS of them per lane, up to 32 columns per lane
    /// (16 x 32 ran 2.1x faster than the general loop's 40 x 8 at 32x32, one thread; rows 16-40 within
    /// 5 %). Nil below 16 columns per lane, where the general loop measured faster (4x4 latents).
    static func rowWindow(outChannels: Int, batch: Int, outHeight: Int, outWidth: Int, lanes: Int)
        -> (tiling: RegisterTiling, segment: Int)? {
        let widest = 32
        let segment = outWidth >= widest ? [32, 16, 8, 4].first { outWidth % $0 == 0 } : (outWidth % 4 == 0 ? outWidth : nil)
        guard let segment else { return nil }
        // Whole rows stack while the lanes of one subgroup still get a tile each.
        var laneRows = 1
        if segment == outWidth {
            let columns = batch * outHeight * outWidth
            for rows in stride(from: widest / segment, through: 1, by: -1)
            where outHeight % rows == 0 && columns / (rows * segment) >= lanes {
                laneRows = rows
                break
            }
        }
        let columnsPerLane = segment * laneRows
        guard columnsPerLane >= 16 else { return nil }
        let profile = Profile(accumulatorBudget: 512, maximumRowGroups: 8, columnWidths: [(columnsPerLane, 1)])
        let tiling = choose(profile, columns: batch * outHeight * outWidth, rows: outChannels, lanes: lanes)
        return (tiling, segment)
    }

    /// The compact tile of conv2d.comp's general loop and matmul.comp: one row per lane, four columns
    /// per lane. LLVM compiles it in a fraction of a second on lavapipe, against seconds for the
    /// tuned tiles (BENCHMARKS.md, "Cold start"), and it is one variant for every shape.
    static func compact(lanes: Int) -> RegisterTiling { RegisterTiling(rows: lanes, columnsPerLane: 4) }

    private static func padded(_ value: Int, to multiple: Int) -> Int { (value + multiple - 1) / multiple * multiple }
}

extension RegisterTiling.Profile {
    /// conv2d.comp: 40 x 8 and 64-80 x 4 measured best for their widths (one thread, SD1.5
    /// shapes); larger tiles spill without saving loads. Row groups stop at 8: lavapipe computed
    /// wrong results from 10 per lane on (tiles of 80 x 4 on 8 lanes, in the op-case table).
    static let convolution = RegisterTiling.Profile(
        accumulatorBudget: 320, maximumRowGroups: 8, columnWidths: [(8, 1.0), (12, 1.05), (16, 1.1), (4, 1.3)])

    /// matmul.comp's VECTOR_K path with TRANSPOSE_B (every linear layer): each accumulator is
    /// written once per four multiply-adds, so large tiles pay; 32 x 40 ran 1.75x faster than
    /// 24 x 12 (one thread, f16, 1024 x 1280 x 1024), 32 x 32 and 32 x 48 within 5 % of it.
    static let matmulFourDeep = RegisterTiling.Profile(
        accumulatorBudget: 1280, maximumRowGroups: 4,
        columnWidths: [(40, 1.0), (32, 1.04), (48, 1.04), (24, 1.3), (16, 1.45)])
}
