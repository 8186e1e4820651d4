import KilnGraph

// The three pieces of Winograd F(2x2, 3x3) (Lavin & Gray, https://arxiv.org/abs/1509.09308), with
// transform-domain position ξ = 4 * row + column. Along one axis the transforms are
//   input  Bᵀ d: (d0 - d2, d1 + d2, d2 - d1, d1 - d3)
//   weight G g:  (g0, (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2, g2)
//   output Aᵀ m: (m0 + m1 + m2, m1 - m2 - m3)
// and each 2-D transform applies its 1-D form to the columns, then to the rows.
extension CPUKernels {
    static func inputTransform(_ d: [Float]) -> [Float] { [d[0] - d[2], d[1] + d[2], d[2] - d[1], d[1] - d[3]] }
    static func weightTransform(_ g: [Float]) -> [Float] { [g[0], (g[0] + g[1] + g[2]) * 0.5, (g[0] - g[1] + g[2]) * 0.5, g[2]] }
    static func outputTransform(_ m: [Float]) -> [Float] { [m[0] + m[1] + m[2], m[1] - m[2] - m[3]] }

    /// `tile [rows x columns]` row-major -> `transform` along columns then rows.
    static func transform2D(_ tile: [Float], size: Int, _ transform: ([Float]) -> [Float]) -> [Float] {
        let columns = (0..<size).map { column in transform((0..<size).map { tile[$0 * size + column] }) }  // [column][row']
        let rows = columns[0].count
        return (0..<rows).flatMap { row in transform(columns.map { $0[row] }) }
    }

    /// `Operation.winogradInput`: `x [N, C, H, W] -> [16, T, C]`, or of x's nearest 2x upsampling.
    static func winogradInput(_ x: [Float], _ shape: Shape, upsampled: Bool) -> [Float] {
        let scale = upsampled ? 2 : 1
        let (n, c, h, w) = (shape[0], shape[1], scale * shape[2], scale * shape[3])
        let (tilesY, tilesX) = ((h + 1) / 2, (w + 1) / 2)
        let tiles = n * tilesY * tilesX
        var output = [Float](repeating: 0, count: 16 * tiles * c)
        for tile in 0..<tiles {
            let image = tile / (tilesY * tilesX), row = (tile / tilesX) % tilesY, column = tile % tilesX
            for channel in 0..<c {
                let plane = (image * c + channel) * shape[2] * shape[3]
                let patch = (0..<16).map { index -> Float in
                    let y = 2 * row - 1 + index / 4, x0 = 2 * column - 1 + index % 4
                    return y >= 0 && y < h && x0 >= 0 && x0 < w ? x[plane + (y / scale) * shape[3] + x0 / scale] : 0
                }
                for (position, value) in transform2D(patch, size: 4, inputTransform).enumerated() {
                    output[(position * tiles + tile) * c + channel] = value
                }
            }
        }
        return output
    }

    /// `Operation.winogradWeight`: `weight [O, C, 3, 3] -> [16, O, C]`.
    static func winogradWeight(_ weight: [Float], _ shape: Shape) -> [Float] {
        let pairs = shape[0] * shape[1]
        var output = [Float](repeating: 0, count: 16 * pairs)
        for pair in 0..<pairs {
            let filter = Array(weight[(pair * 9)..<(pair * 9 + 9)])
            for (position, value) in transform2D(filter, size: 3, weightTransform).enumerated() { output[position * pairs + pair] = value }
        }
        return output
    }

    /// `Operation.winogradOutput`: `m [16, T, O] -> [N, O, H, W]` (+ bias, + addend as conv2d's).
    static func winogradOutput(_ m: [Float], _ shape: Shape, _ parameters: WinogradOutput, bias: [Float]?,
                               addend: (values: [Float], shape: Shape)?) -> [Float] {
        let (tiles, o) = (shape[1], shape[2])
        let (h, w) = (parameters.height, parameters.width)
        let (tilesY, tilesX) = ((h + 1) / 2, (w + 1) / 2)
        var output = [Float](repeating: 0, count: parameters.batch * o * h * w)
        for tile in 0..<tiles {
            let image = tile / (tilesY * tilesX), row = (tile / tilesX) % tilesY, column = tile % tilesX
            for channel in 0..<o {
                let values = transform2D((0..<16).map { m[($0 * tiles + tile) * o + channel] }, size: 4, outputTransform)
                for index in 0..<4 {
                    let y = 2 * row + index / 2, x = 2 * column + index % 2
                    guard y < h, x < w else { continue }
                    let target = ((image * o + channel) * h + y) * w + x
                    var value = values[index] + (bias?[channel] ?? 0)
                    if let addend {
                        value += addend.values[addend.shape.elementCount == output.count ? target : image * o + channel]
                    }
                    output[target] = value
                }
            }
        }
        return output
    }
}
