import Foundation
import KilnGraph

extension CPUKernels {
    /// Mean and biased variance of `count` values from `start`, two-pass in f64.
    static func moments(_ x: [Float], start: Int, count: Int) -> (mean: Double, variance: Double) {
        var sum = 0.0
        for index in start..<(start + count) { sum += Double(x[index]) }
        let mean = sum / Double(count)
        var squares = 0.0
        for index in start..<(start + count) { let d = Double(x[index]) - mean; squares += d * d }
        return (mean, squares / Double(count))
    }

    /// `x [N, C, *]`: per (sample, group) mean and biased variance, `* weight[c] + bias[c]`, then
    /// `y * sigmoid(y)` when `silu`.
    static func groupNorm(_ x: [Float], _ shape: Shape, groups: Int, weight: [Float], bias: [Float], epsilon: Float, silu: Bool) -> [Float] {
        let channels = shape[1], spatial = shape.count(from: 2)
        let perGroup = channels / groups * spatial
        return parallelFill(count: x.count, chunks: shape[0] * groups) { row, out in
            let start = row * perGroup
            let (mean, variance) = moments(x, start: start, count: perGroup)
            let inverse = 1 / (variance + Double(epsilon)).squareRoot()
            for index in 0..<perGroup {
                let channel = (row % groups) * (channels / groups) + index / spatial
                var value = Float((Double(x[start + index]) - mean) * inverse) * weight[channel] + bias[channel]
                if silu { value = value / (1 + Foundation.exp(-value)) }
                out[start + index] = value
            }
        }
    }

    /// Normalises each row of `width` values (the last dim); optional `weight, bias [width]`.
    static func layerNorm(_ x: [Float], width: Int, weight: [Float]?, bias: [Float]?, epsilon: Float) -> [Float] {
        parallelFill(count: x.count, chunks: x.count / max(width, 1)) { row, out in
            let start = row * width
            let (mean, variance) = moments(x, start: start, count: width)
            let inverse = 1 / (variance + Double(epsilon)).squareRoot()
            for index in 0..<width {
                out[start + index] = Float((Double(x[start + index]) - mean) * inverse) * (weight?[index] ?? 1) + (bias?[index] ?? 0)
            }
        }
    }

    /// `x / sqrt(mean(x²) + eps) (* weight)` over each row of `width` values.
    static func rmsNorm(_ x: [Float], width: Int, weight: [Float]?, epsilon: Float) -> [Float] {
        parallelFill(count: x.count, chunks: x.count / max(width, 1)) { row, out in
            let start = row * width
            var squares = 0.0
            for index in start..<(start + width) { squares += Double(x[index]) * Double(x[index]) }
            let inverse = 1 / (squares / Double(width) + Double(epsilon)).squareRoot()
            for index in 0..<width { out[start + index] = Float(Double(x[start + index]) * inverse) * (weight?[index] ?? 1) }
        }
    }

    /// Softmax over each row of `width` values, max-subtracted, summed in f64. As torch: a row with a
    /// NaN or a +inf is NaN throughout (inf - inf), a -inf has weight 0, a row of -inf is NaN (0 / 0).
    static func softmax(_ x: [Float], width: Int) -> [Float] {
        parallelFill(count: x.count, chunks: x.count / max(width, 1)) { row, out in
            let start = row * width
            var largest = -Double.infinity
            for index in start..<(start + width) { largest = maximumPropagatingNaN(largest, Double(x[index])) }
            var total = 0.0
            for index in start..<(start + width) { total += Foundation.exp(Double(x[index]) - largest) }
            for index in start..<(start + width) { out[index] = Float(Foundation.exp(Double(x[index]) - largest) / total) }
        }
    }
}
