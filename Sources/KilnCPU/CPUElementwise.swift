import Foundation
import KilnGraph

extension CPUKernels {
    /// One unary op on one value, evaluated in f64: gelu is the erf form, geluTanh the tanh
    /// approximation, quickGelu `x * sigmoid(1.702 x)`.
    static func apply(_ op: UnaryOperator, _ x: Float) -> Float {
        let v = Double(x)
        switch op {
        case .silu: return Float(v / (1 + Foundation.exp(-v)))
        case .gelu: return Float(0.5 * v * (1 + erf(v / 2.0.squareRoot())))
        case .geluTanh: return Float(0.5 * v * (1 + tanh((2 / Double.pi).squareRoot() * (v + 0.044715 * v * v * v))))
        case .quickGelu: return Float(v / (1 + Foundation.exp(-1.702 * v)))
        case .exp: return Float(Foundation.exp(v))
        }
    }

    /// `min(max(x, lower), upper)`, except that NaN stays NaN (torch.clamp): an infinity becomes the
    /// bound on its side, so FLUX's f16 clipping turns an overflow into +-65504 but keeps a NaN.
    static func clamp(_ x: Float, lower: Float, upper: Float) -> Float {
        x.isNaN ? x : Swift.min(Swift.max(x, lower), upper)
    }

    /// The larger of `a` and `b`, NaN if either is NaN (unlike `Swift.max` and IEEE maxNum, which
    /// may return the other operand): a running maximum over a row that holds a NaN is NaN.
    static func maximumPropagatingNaN(_ a: Double, _ b: Double) -> Double {
        a.isNaN || b.isNaN ? .nan : Swift.max(a, b)
    }

    /// Element offsets of `operand` for each output position under numpy broadcasting.
    static func broadcastStrides(_ operand: Shape, into output: Shape) -> [Int] {
        let strides = operand.strides
        return (0..<output.rank).map { axis in
            let operandAxis = axis - (output.rank - operand.rank)
            guard operandAxis >= 0, operand.dimensions[operandAxis] != 1 else { return 0 }
            return strides[operandAxis]
        }
    }

    /// `a op b` with numpy broadcasting of `aShape` and `bShape` to `output`.
    static func binary(_ op: BinaryOperator, _ a: [Float], _ aShape: Shape, _ b: [Float], _ bShape: Shape, output: Shape) -> [Float] {
        let combine: (Float, Float) -> Float = switch op {
        case .add: (+)
        case .sub: (-)
        case .mul: (*)
        }
        if aShape == output && bShape == output { return zip(a, b).map(combine) }
        let aStrides = broadcastStrides(aShape, into: output), bStrides = broadcastStrides(bShape, into: output)
        var result = [Float](repeating: 0, count: output.elementCount)
        var coordinate = [Int](repeating: 0, count: output.rank)
        var (aIndex, bIndex) = (0, 0)
        for index in 0..<result.count {
            result[index] = combine(a[aIndex], b[bIndex])
            // Odometer increment: bump the last axis, carry into earlier ones.
            var axis = output.rank - 1
            while axis >= 0 {
                coordinate[axis] += 1
                aIndex += aStrides[axis]
                bIndex += bStrides[axis]
                if coordinate[axis] < output.dimensions[axis] { break }
                aIndex -= aStrides[axis] * coordinate[axis]
                bIndex -= bStrides[axis] * coordinate[axis]
                coordinate[axis] = 0
                axis -= 1
            }
        }
        return result
    }

    /// `x [..., 2N] -> [..., N]`: `h * gelu_erf(gate)` with `(h, gate) = x.chunk(2, -1)`.
    static func geglu(_ x: [Float], halfWidth: Int) -> [Float] {
        let rows = x.count / (2 * halfWidth)
        var y = [Float](repeating: 0, count: rows * halfWidth)
        for row in 0..<rows {
            for column in 0..<halfWidth {
                let base = row * 2 * halfWidth + column
                y[row * halfWidth + column] = x[base] * apply(.gelu, x[base + halfWidth])
            }
        }
        return y
    }

    /// `Operation.guidedStep`: halves `u`, `c` of `prediction` (or the prediction alone without guidance).
    static func guidedStep(prediction: [Float], sample: [Float], coefficients: [Float], noise: [Float]?) -> [Float] {
        let (scale, sampleScale, outputScale, noiseScale) = (coefficients[0], coefficients[1], coefficients[2], coefficients[3])
        let guided = prediction.count == 2 * sample.count
        return sample.indices.map { index in
            var output = prediction[index]
            if guided {
                let conditional = prediction[sample.count + index]
                output = output + scale * (conditional - output)
            }
            var next = sample[index] * sampleScale + output * outputScale
            if let noise { next = next + noise[index] * noiseScale }
            return next
        }
    }

    /// `x [B, L, D] * (1 + scale [B, D]) + shift [B, D]`.
    static func modulate(_ x: [Float], shift: [Float], scale: [Float], shape: Shape) -> [Float] {
        let (length, width) = (shape[1], shape[2])
        return x.indices.map { index in
            let row = index / (length * width) * width + index % width
            return x[index] * (1 + scale[row]) + shift[row]
        }
    }

    /// `x [B, H, L, D]`, `cos, sin [L, D]`: pairs `(x[2i], x[2i+1])` rotate to `(-x[2i+1], x[2i])`;
    /// `y = x * cos + rotated * sin`.
    static func rope(_ x: [Float], cos: [Float], sin: [Float], shape: Shape) -> [Float] {
        let (length, width) = (shape[2], shape[3])
        return x.indices.map { index in
            let d = index % width, table = (index / width) % length * width + d
            let rotated = d % 2 == 0 ? -x[index + 1] : x[index - 1]
            return x[index] * cos[table] + rotated * sin[table]
        }
    }

    /// diffusers' get_timestep_embedding, `t [N] -> [N, dimension]`, computed in f64: `[sin, cos]` of
    /// `scale * t * maxPeriod^(-i / (half - shift))` (`[cos, sin]` when flipped); an odd dimension
    /// leaves its last column zero.
    static func timestepEmbedding(_ t: [Float], _ p: TimestepEmbedding) -> [Float] {
        let half = p.dimension / 2
        var y = [Float](repeating: 0, count: t.count * p.dimension)
        for (row, time) in t.enumerated() {
            for i in 0..<half {
                let exponent = -Foundation.log(Double(p.maxPeriod)) * Double(i) / (Double(half) - Double(p.downscaleFrequencyShift))
                let angle = Double(p.scale) * Double(time) * Foundation.exp(exponent)
                let (first, second) = p.flipSinToCos ? (Foundation.cos(angle), Foundation.sin(angle)) : (Foundation.sin(angle), Foundation.cos(angle))
                y[row * p.dimension + i] = Float(first)
                y[row * p.dimension + half + i] = Float(second)
            }
        }
        return y
    }
}
