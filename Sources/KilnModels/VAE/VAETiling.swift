import KilnGraph

/// Tile geometry of diffusers' tiled VAE (`AutoencoderKL.enable_tiling`): square tiles of
/// `sampleTileSize` image pixels (`sampleTileSize / f` latent pixels) that overlap by
/// `overlapFactor` of a tile and are blended linearly across the overlap.
///
/// Decoding `[B, L, h, w]`: latent tiles start every `latentTile * (1 - overlap)` pixels; each
/// decoded tile is blended with the tile above and the tile to its left over
/// `sampleTile * overlap` image rows / columns, then its top-left `sampleTile - blend` pixels
/// are kept. Encoding mirrors this with image tiles and latent blends. Edge tiles are smaller.
public struct VAETiling: Sendable, Equatable {
    /// Tile edge in image pixels (diffusers' `tile_sample_min_size`, the config's `sample_size`).
    public var sampleTileSize: Int
    /// Fraction of a tile shared with its neighbour (diffusers: 0.25).
    public var overlapFactor: Double

    public init(sampleTileSize: Int = 512, overlapFactor: Double = 0.25) {
        self.sampleTileSize = sampleTileSize
        self.overlapFactor = overlapFactor
    }

    /// Tile edge in latent pixels; truncates as diffusers' `int(sample_size / 2 ** (levels - 1))`.
    public func latentTileSize(downscaleFactor: Int) -> Int { Int(Double(sampleTileSize) / Double(downscaleFactor)) }

    /// Latent tiles in, image tiles out.
    func decodeLayout(downscaleFactor: Int) -> TileLayout {
        let latentTile = latentTileSize(downscaleFactor: downscaleFactor)
        let blend = Int(Double(sampleTileSize) * overlapFactor)
        return TileLayout(tile: latentTile, stride: Int(Double(latentTile) * (1 - overlapFactor)), blend: blend, keep: sampleTileSize - blend)
    }

    /// Image tiles in, latent tiles out.
    func encodeLayout(downscaleFactor: Int) -> TileLayout {
        let latentTile = latentTileSize(downscaleFactor: downscaleFactor)
        let blend = Int(Double(latentTile) * overlapFactor)
        return TileLayout(tile: sampleTileSize, stride: Int(Double(sampleTileSize) * (1 - overlapFactor)), blend: blend, keep: latentTile - blend)
    }
}

/// Where tiles are cut from an input and how their outputs are stitched.
struct TileLayout: Sendable, Equatable {
    /// Input tile edge.
    let tile: Int
    /// Input pixels between the starts of neighbouring tiles.
    let stride: Int
    /// Output rows / columns blended with the previous tile.
    let blend: Int
    /// Output rows / columns kept from the top-left of each tile.
    let keep: Int

    /// Start offsets along an axis of `length` input pixels.
    func starts(_ length: Int) -> [Int] { Array(Swift.stride(from: 0, to: length, by: stride)) }

    /// Input tile shapes `[B, C, th, tw]` for an input of `shape` `[B, C, H, W]`, in raster order.
    func tileShapes(for shape: Shape) -> [Shape] {
        starts(shape[2]).flatMap { row in
            starts(shape[3]).map { column in
                Shape([shape[0], shape[1], min(tile, shape[2] - row), min(tile, shape[3] - column)])
            }
        }
    }

    func validate(operation: String) throws {
        guard tile > 0, stride > 0, keep > 0, blend >= 0 else {
            throw GraphError(operation, "tile layout \(self) is degenerate: use a larger tile or a smaller overlap")
        }
    }

    /// Cuts `input` `[B, C, H, W]` into overlapping tiles, maps each through `body`, blends each
    /// output with its (already blended) upper and left neighbours in raster order and keeps the
    /// top-left `keep` x `keep` of each: diffusers' tiled_decode / tiled_encode on host tensors.
    func apply(_ input: HostTensor, _ body: (HostTensor) throws -> HostTensor) throws -> HostTensor {
        let rowStarts = starts(input.shape[2]), columnStarts = starts(input.shape[3])
        var tiles: [[HostTensor]] = try rowStarts.map { row in
            try columnStarts.map { column in
                try body(crop(input, rows: row..<min(row + tile, input.shape[2]), columns: column..<min(column + tile, input.shape[3])))
            }
        }
        for row in tiles.indices {
            for column in tiles[row].indices {
                if row > 0 { blendVertically(from: tiles[row - 1][column], into: &tiles[row][column]) }
                if column > 0 { blendHorizontally(from: tiles[row][column - 1], into: &tiles[row][column]) }
            }
        }
        return stitch(tiles)
    }

    /// `input[:, :, rows, columns]`.
    func crop(_ input: HostTensor, rows: Range<Int>, columns: Range<Int>) -> HostTensor {
        let (planes, height, width) = (input.shape[0] * input.shape[1], input.shape[2], input.shape[3])
        var values: [Float] = []
        values.reserveCapacity(planes * rows.count * columns.count)
        for plane in 0..<planes {
            for row in rows {
                let start = (plane * height + row) * width
                values.append(contentsOf: input.scalars[(start + columns.lowerBound)..<(start + columns.upperBound)])
            }
        }
        return HostTensor(shape: [input.shape[0], input.shape[1], rows.count, columns.count], scalars: values, dtype: input.dtype)
    }

    /// The first rows of `lower` fade in from the last rows of `upper` (same batch, channels, width).
    func blendVertically(from upper: HostTensor, into lower: inout HostTensor) {
        let extent = min(upper.shape[2], lower.shape[2], blend)
        let (planes, width) = (lower.shape[0] * lower.shape[1], lower.shape[3])
        let (upperHeight, lowerHeight) = (upper.shape[2], lower.shape[2])
        for y in 0..<extent {
            // Both weights rounded from double, as torch does with Python-float scalars.
            let (fadingWeight, weight) = (Float(1 - Double(y) / Double(extent)), Float(Double(y) / Double(extent)))
            for plane in 0..<planes {
                let source = (plane * upperHeight + upperHeight - extent + y) * width
                let target = (plane * lowerHeight + y) * width
                for x in 0..<width {
                    lower.scalars[target + x] = upper.scalars[source + x] * fadingWeight + lower.scalars[target + x] * weight
                }
            }
        }
    }

    /// The first columns of `right` fade in from the last columns of `left` (same batch, channels, height).
    func blendHorizontally(from left: HostTensor, into right: inout HostTensor) {
        let extent = min(left.shape[3], right.shape[3], blend)
        let (rows, leftWidth, rightWidth) = (right.shape[0] * right.shape[1] * right.shape[2], left.shape[3], right.shape[3])
        for x in 0..<extent {
            // Both weights rounded from double, as torch does with Python-float scalars.
            let (fadingWeight, weight) = (Float(1 - Double(x) / Double(extent)), Float(Double(x) / Double(extent)))
            for row in 0..<rows {
                let source = row * leftWidth + leftWidth - extent + x
                let target = row * rightWidth + x
                right.scalars[target] = left.scalars[source] * fadingWeight + right.scalars[target] * weight
            }
        }
    }

    /// Concatenates the top-left `keep` x `keep` of every tile: `[B, C, sum of kept rows, sum of kept columns]`.
    func stitch(_ tiles: [[HostTensor]]) -> HostTensor {
        let first = tiles[0][0]
        let keptRows = tiles.map { min(keep, $0[0].shape[2]) }
        let keptColumns = tiles[0].map { min(keep, $0.shape[3]) }
        let (height, width) = (keptRows.reduce(0, +), keptColumns.reduce(0, +))
        let planes = first.shape[0] * first.shape[1]
        var values = [Float](repeating: 0, count: planes * height * width)
        var top = 0
        for (row, tileRow) in tiles.enumerated() {
            var left = 0
            for (column, tile) in tileRow.enumerated() {
                let tileWidth = tile.shape[3], tileHeight = tile.shape[2]
                for plane in 0..<planes {
                    for y in 0..<keptRows[row] {
                        let source = (plane * tileHeight + y) * tileWidth
                        let target = (plane * height + top + y) * width + left
                        for x in 0..<keptColumns[column] { values[target + x] = tile.scalars[source + x] }
                    }
                }
                left += keptColumns[column]
            }
            top += keptRows[row]
        }
        return HostTensor(shape: [first.shape[0], first.shape[1], height, width], scalars: values)
    }
}
