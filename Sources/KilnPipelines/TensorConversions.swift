import KilnGraph
import KilnSampling

// The samplers work on host `ShapedArray`s, the backends on `HostTensor`s: both are row-major
// f32, so converting is a relabelling.
extension ShapedArray {
    init(_ tensor: HostTensor) { self.init(shape: tensor.shape.dimensions, scalars: tensor.scalars) }

    func hostTensor(dtype: DType = .float32) -> HostTensor {
        HostTensor(shape: Shape(shape), scalars: scalars, dtype: dtype)
    }

    /// `count` copies stacked on the first axis (`torch.cat([x] * count)`).
    func repeated(_ count: Int) -> ShapedArray {
        var stacked = [Float]()
        stacked.reserveCapacity(scalars.count * count)
        for _ in 0..<count { stacked += scalars }
        return ShapedArray(shape: [shape[0] * count] + shape.dropFirst(), scalars: stacked)
    }

    /// Arrays of equal trailing shape joined on the first axis (`torch.cat(parts)`).
    static func concatenated(_ parts: [ShapedArray]) -> ShapedArray {
        let batch = parts.reduce(0) { $0 + $1.shape[0] }
        return ShapedArray(shape: [batch] + parts[0].shape.dropFirst(), scalars: parts.flatMap(\.scalars))
    }

    /// Joined on the channel axis 1 (`torch.cat(parts, dim=1)`), for `[B, C_i, ...]` parts.
    static func concatenatedChannels(_ parts: [ShapedArray]) -> ShapedArray {
        let batch = parts[0].shape[0]
        let spatial = parts[0].shape.dropFirst(2).reduce(1, *)
        var scalars = [Float]()
        scalars.reserveCapacity(parts.reduce(0) { $0 + $1.scalars.count })
        for item in 0..<batch {
            for part in parts {
                let size = part.shape[1] * spatial
                scalars += part.scalars[(item * size)..<((item + 1) * size)]
            }
        }
        let channels = parts.reduce(0) { $0 + $1.shape[1] }
        return ShapedArray(shape: [batch, channels] + parts[0].shape.dropFirst(2), scalars: scalars)
    }

    /// The first-axis rows `range` (`x[range]`).
    func rows(_ range: Range<Int>) -> ShapedArray {
        let size = scalars.count / shape[0]
        return ShapedArray(shape: [range.count] + shape.dropFirst(), scalars: Array(scalars[(range.lowerBound * size)..<(range.upperBound * size)]))
    }
}
