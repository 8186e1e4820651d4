import Foundation
import KilnGraph

/// The fixed 2-D sine-cosine position embedding of ViT-style patch grids (MAE, DiT), computed on
/// the host as diffusers' `get_2d_sincos_pos_embed` computes it for `PatchEmbed`: positions in
/// f32, frequencies and sines in f64, rounded to f32 at the end.
///
/// Shape: `[h * w, D]` for a grid of `h` rows and `w` columns, row-major over the grid. The first
/// `D/2` columns encode the column (x) coordinate, the last `D/2` the row (y) coordinate, each as
/// `D/4` sines followed by `D/4` cosines of `pos / 10000^(i / (D/4))`.
public enum SinCosPositionEmbedding {
    /// `baseSize` is the grid side the model was trained at (`sample_size / patch_size`): a grid of
    /// another size is stretched to it, as diffusers' `PatchEmbed` does when the input size differs.
    public static func table(width: Int, rows: Int, columns: Int, baseSize: Int, interpolationScale: Float = 1) -> HostTensor {
        let quarter = width / 4
        let frequencies = (0..<quarter).map { 1 / Foundation.pow(10000.0, Double($0) / Double(quarter)) }
        // torch: arange(n, float32) / (n / base_size) / interpolation_scale, all in f32.
        func positions(_ count: Int) -> [Double] {
            let stretch = Float(Double(count) / Double(baseSize))
            return (0..<count).map { Double(Float($0) / stretch / interpolationScale) }
        }
        let columnPositions = positions(columns), rowPositions = positions(rows)
        var scalars = [Float](repeating: 0, count: rows * columns * width)
        for row in 0..<rows {
            for column in 0..<columns {
                let base = (row * columns + column) * width
                for (index, frequency) in frequencies.enumerated() {
                    let x = columnPositions[column] * frequency, y = rowPositions[row] * frequency
                    scalars[base + index] = Float(Foundation.sin(x))
                    scalars[base + quarter + index] = Float(Foundation.cos(x))
                    scalars[base + 2 * quarter + index] = Float(Foundation.sin(y))
                    scalars[base + 3 * quarter + index] = Float(Foundation.cos(y))
                }
            }
        }
        return HostTensor(shape: [rows * columns, width], scalars: scalars)
    }
}
