import Foundation
import KilnGraph

/// SD3's 2-D sin-cos position table, computed on the host as diffusers' `PatchEmbed` builds its
/// `pos_embed` buffer (`get_2d_sincos_pos_embed(width, pos_embed_max_size, base_size=sample_size / patch)`):
/// for the patch at row i, column j of the `M x M` grid, the first half of the width encodes the
/// column coordinate `j / (M / base)` and the second half the row coordinate, each half as
/// `[sin(p * w_k), cos(p * w_k)]` with `w_k = 10000^(-k / (width / 4))`.
///
/// Checkpoints carry this table (`pos_embed.pos_embed`, a persistent buffer); the model reads the
/// stored one and this supplies it for checkpoints that left it out.
public enum SD3PositionTable {
    /// `[1, M * M, width]`, f32 (coordinates in f32, sinusoids in f64, as torch computes them).
    public static func table(configuration c: SD3TransformerConfiguration) throws -> HostTensor {
        let width = c.innerDimension
        guard let gridSize = c.positionEmbeddingMaxSize else {
            throw ConfigurationError(file: "transformer config", message: "pos_embed_max_size is null: no position table to compute")
        }
        guard width % 4 == 0 else {
            throw ConfigurationError(file: "transformer config", message: "width \(width) must be a multiple of 4 for the 2-D sin-cos table")
        }
        let baseSize = c.sampleSize / c.patchSize
        // arange(M, float32) / (M / base_size) / interpolation_scale (1), in float32.
        let spacing = Float(Double(gridSize) / Double(baseSize))
        let coordinates = (0..<gridSize).map { Float($0) / spacing }
        let quarter = width / 4
        let frequencies = (0..<quarter).map { 1 / Foundation.pow(10000.0, Double($0) / Double(quarter)) }
        var scalars = [Float](repeating: 0, count: gridSize * gridSize * width)
        for row in 0..<gridSize {
            for column in 0..<gridSize {
                let base = (row * gridSize + column) * width
                for (half, position) in [Double(coordinates[column]), Double(coordinates[row])].enumerated() {
                    for k in 0..<quarter {
                        let angle = position * frequencies[k]
                        scalars[base + half * 2 * quarter + k] = Float(Foundation.sin(angle))
                        scalars[base + half * 2 * quarter + quarter + k] = Float(Foundation.cos(angle))
                    }
                }
            }
        }
        return HostTensor(shape: [1, gridSize * gridSize, width], scalars: scalars)
    }

    /// `source` with the computed table under `pos_embed.pos_embed` when it has none of its own.
    public static func supplied(to source: TensorSource, configuration: SD3TransformerConfiguration) throws -> TensorSource {
        guard source.shape(of: "pos_embed.pos_embed") == nil else { return source }
        return AddedTensorsSource(base: source, added: ["pos_embed.pos_embed": try table(configuration: configuration)])
    }
}
