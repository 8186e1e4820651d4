import Foundation
import KilnGraph

/// Reference kernels; every function takes and returns contiguous row-major f32 values.
enum CPUKernels {}

extension CPUKernels {
    /// `[rows, columns] -> [columns, rows]` for each of `count` matrices.
    static func transposeLast(_ x: [Float], count: Int, rows: Int, columns: Int) -> [Float] {
        var y = [Float](repeating: 0, count: x.count)
        for matrix in 0..<count {
            let base = matrix * rows * columns
            for r in 0..<rows {
                for c in 0..<columns { y[base + c * rows + r] = x[base + r * columns + c] }
            }
        }
        return y
    }

    /// `a [..., M, K] @ b [..., K, N] (+ bias [N]) -> [..., M, N]` (transposed operands stored
    /// `[..., K, M]` / `[..., N, K]`; rank-2 `b` shared across the batch), f64 accumulation.
    static func matmul(_ a: [Float], _ aShape: Shape, _ b: [Float], _ bShape: Shape, bias: [Float]?,
                       transposeA: Bool, transposeB: Bool, output: Shape) -> [Float] {
        let m = output[-2], n = output[-1]
        let k = transposeA ? aShape[-2] : aShape[-1]
        let batch = output.count(before: output.rank - 2)
        let bBatch = bShape.rank == 2 ? 1 : batch
        // Bring both operands to [M, K] @ [K, N] first so the inner loop walks contiguous rows.
        let left = transposeA ? transposeLast(a, count: batch, rows: k, columns: m) : a
        let right = transposeB ? transposeLast(b, count: bBatch, rows: n, columns: k) : b
        return parallelFill(count: batch * m * n, chunks: batch * m) { row, out in
            let matrix = row / m, i = row % m
            let aBase = (matrix * m + i) * k, bBase = (bShape.rank == 2 ? 0 : matrix) * k * n, cBase = row * n
            var accumulator = [Double](repeating: 0, count: n)
            for p in 0..<k {
                let value = Double(left[aBase + p])
                let bRow = bBase + p * n
                for j in 0..<n { accumulator[j] += value * Double(right[bRow + j]) }
            }
            for j in 0..<n { out[cBase + j] = Float(accumulator[j] + Double(bias?[j] ?? 0)) }
        }
    }

    /// `x [N, C, H, W] * w [O, C, kh, kw] (+ bias [O]) -> output [N, O, OH, OW]`, zero padding,
    /// f64 accumulation; one parallel chunk per (sample, output channel). Padded taps are skipped,
    /// except under a non-finite weight, whose product with the padding's zero is NaN (as torch).
    static func conv2d(_ x: [Float], _ xShape: Shape, _ w: [Float], _ wShape: Shape, bias: [Float]?,
                       _ p: Convolution2D, output: Shape) -> [Float] {
        let (channels, height, width) = (xShape[1], xShape[2], xShape[3])
        let (outChannels, kh, kw) = (wShape[0], wShape[2], wShape[3])
        let (outHeight, outWidth) = (output[2], output[3])
        let plane = outHeight * outWidth
        return parallelFill(count: output.elementCount, chunks: output[0] * outChannels) { chunk, out in
            let n = chunk / outChannels, o = chunk % outChannels
            var accumulator = [Double](repeating: Double(bias?[o] ?? 0), count: plane)
            for c in 0..<channels {
                let xBase = (n * channels + c) * height * width
                for ky in 0..<kh {
                    for kx in 0..<kw {
                        let weight = Double(w[((o * channels + c) * kh + ky) * kw + kx])
                        if !weight.isFinite {
                            // Zero padding times an infinite or NaN weight is NaN, as torch computes it.
                            for oy in 0..<outHeight {
                                let iy = oy * p.strideY - p.paddingY + ky
                                for ox in 0..<outWidth {
                                    let ix = ox * p.strideX - p.paddingX + kx
                                    let inside = iy >= 0 && iy < height && ix >= 0 && ix < width
                                    accumulator[oy * outWidth + ox] += weight * (inside ? Double(x[xBase + iy * width + ix]) : 0)
                                }
                            }
                            continue
                        }
                        for oy in 0..<outHeight {
                            let iy = oy * p.strideY - p.paddingY + ky
                            guard iy >= 0, iy < height else { continue }
                            for ox in 0..<outWidth {
                                let ix = ox * p.strideX - p.paddingX + kx
                                guard ix >= 0, ix < width else { continue }
                                accumulator[oy * outWidth + ox] += weight * Double(x[xBase + iy * width + ix])
                            }
                        }
                    }
                }
            }
            let base = chunk * plane
            for index in 0..<plane { out[base + index] = Float(accumulator[index]) }
        }
    }

    /// Softmax(q kᵀ scale + bias) v for one query row at a time; causal hides keys after the query.
    /// `bias` is `[B, H, Lq, Lk]`, or `[1, H, Lq, Lk]` shared by the batch when not `batched`.
    /// Non-finite values: a NaN or +inf score makes its query's row NaN (inf - inf in the softmax), a
    /// -inf score gives weight 0 (times an infinite value: NaN, as torch); a query whose scores are all
    /// -inf gets zeros, as torch's SDPA. A key the causal mask hides takes no part at all, whatever its
    /// key and value hold (torch's math path multiplies the hidden value by weight 0, so an infinite
    /// hidden value turns earlier queries to NaN there: causality is the meaning kept here).
    static func attention(_ q: [Float], _ k: [Float], _ v: [Float], q qShape: Shape, k kShape: Shape, v vShape: Shape,
                          bias: (values: [Float], batched: Bool)? = nil, scale: Float, causal: Bool) -> [Float] {
        let heads = qShape[0] * qShape[1], headsPerBatch = qShape[1]
        let (queries, depth) = (qShape[2], qShape[3])
        let keys = kShape[2], valueDepth = vShape[3]
        return parallelFill(count: heads * queries * valueDepth, chunks: heads * queries) { row, out in
            let head = row / queries, i = row % queries
            let visible = causal ? min(keys, i + 1) : keys
            guard visible > 0 else { return }
            let qBase = row * depth
            let biasHead = bias.map { $0.batched ? head : head % headsPerBatch } ?? 0
            let biasBase = (biasHead * queries + i) * keys
            var scores = [Double](repeating: 0, count: visible)
            for j in 0..<visible {
                let kBase = (head * keys + j) * depth
                var dot = 0.0
                for d in 0..<depth { dot += Double(q[qBase + d]) * Double(k[kBase + d]) }
                scores[j] = dot * Double(scale) + Double(bias?.values[biasBase + j] ?? 0)
            }
            let largest = scores.reduce(-Double.infinity, maximumPropagatingNaN)
            // Every score -inf (a bias row that masks every key): zeros, as torch's SDPA gives them.
            guard largest != -.infinity else { return }
            var total = 0.0
            for j in 0..<visible {
                scores[j] = Foundation.exp(scores[j] - largest)
                total += scores[j]
            }
            var accumulator = [Double](repeating: 0, count: valueDepth)
            for j in 0..<visible {
                let weight = scores[j] / total, vBase = (head * keys + j) * valueDepth
                for d in 0..<valueDepth { accumulator[d] += weight * Double(v[vBase + d]) }
            }
            for d in 0..<valueDepth { out[row * valueDepth + d] = Float(accumulator[d]) }
        }
    }
}
