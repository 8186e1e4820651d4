/// Register-path tile shapes for conv2d.comp, chosen per convolution from its output size and
/// channel counts.
///
/// On lavapipe every tensor load is a loop over the lanes, so a tile's cost is set by its loads
/// per k step (TILE_N pixels + TILE_M / lanes weight rows) against its TILE_M x TILE_N
/// multiply-adds. The U-Net's deep levels have few output columns (4x4 x batch 2 = 32) and many
/// channels: a fixed 12-column tile leaves most lanes clamped onto the last column there, so the
/// column width is fitted to the columns and the rows grow to keep the multiply-adds per load.
struct ConvolutionTiling: Equatable {
    /// Output channels per workgroup (TILE_M), a multiple of the subgroup size.
    var rows: Int
    /// Output columns per lane (TILE_N).
    var columnsPerLane: Int

    /// Accumulators per lane: rows x columnsPerLane. 40 x 8 and 64-80 x 4 measured best for their
    /// widths on lavapipe (one thread, SD1.5 shapes); larger tiles spill without saving loads.
    static let accumulatorBudget = 320
    /// Most weight rows one lane fetches (TILE_M / lanes): lavapipe computed wrong results from
    /// 10 row groups per lane on (tiles of 80 x 4 on 8 lanes, in the op-case table).
    static let maximumRowGroups = 8
    /// The smallest maxComputeWorkGroupCount Vulkan allows; the column tiles are the grid's X.
    static let maximumColumnGroups = 65535
    /// Column widths per lane with their time per column relative to the best (8), measured on
    /// lavapipe with the rows the budget gives them: narrow tiles reload weights more often.
    static let columnWidths: [(columnsPerLane: Int, relativeCost: Double)] = [(8, 1.0), (12, 1.05), (16, 1.1), (4, 1.3)]

    /// The tile for an output of `columns` (batch x output pixels) by `outChannels`, on
    /// `lanes`-wide subgroups, keeping at least `minimumWorkgroups` workgroups when it can so
    /// every lavapipe thread has work until the end of the dispatch.
    static func choose(columns: Int, outChannels: Int, lanes: Int, minimumWorkgroups: Int = 8) -> ConvolutionTiling {
        // Columns past the end still cost a lane each (clamped loads): pick the width with the
        // least padded work.
        func cost(_ width: (columnsPerLane: Int, relativeCost: Double)) -> Double {
            Double(padded(columns, to: lanes * width.columnsPerLane)) * width.relativeCost
        }
        // The grid's X count (column tiles) may not pass maxComputeWorkGroupCount: very large
        // outputs (a 2048x2048 VAE layer) take the widest tile.
        let fitting = columnWidths.filter { (columns + lanes * $0.columnsPerLane - 1) / (lanes * $0.columnsPerLane) <= maximumColumnGroups }
        let columnsPerLane = fitting.min { cost($0) < cost($1) }?.columnsPerLane ?? columnWidths.map(\.columnsPerLane).max() ?? 16
        var rows = max(lanes, min(accumulatorBudget / columnsPerLane / lanes, maximumRowGroups) * lanes)
        rows = min(rows, padded(outChannels, to: lanes))
        let columnTiles = (columns + lanes * columnsPerLane - 1) / (lanes * columnsPerLane)
        while rows > lanes && columnTiles * ((outChannels + rows - 1) / rows) < minimumWorkgroups { rows -= lanes }
        return ConvolutionTiling(rows: rows, columnsPerLane: columnsPerLane)
    }

    private static func padded(_ value: Int, to multiple: Int) -> Int { (value + multiple - 1) / multiple * multiple }
}
