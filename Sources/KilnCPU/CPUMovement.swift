import KilnGraph

// Data movement without arithmetic. These are generic because int32 ids move through the same
// ops (a sliced or concatenated id tensor) as f32 activations.

extension CPUKernels {
    /// `x [N, C, H, W] -> [N, C, 2H, 2W]`, `y[n, c, i, j] = x[n, c, i / 2, j / 2]`.
    static func upsampleNearest2x<Element>(_ x: [Element], _ shape: Shape) -> [Element] {
        let (planes, height, width) = (shape[0] * shape[1], shape[2], shape[3])
        var y: [Element] = []
        y.reserveCapacity(x.count * 4)
        for plane in 0..<planes {
            for i in 0..<(2 * height) {
                let sourceRow = (plane * height + i / 2) * width
                for j in 0..<(2 * width) { y.append(x[sourceRow + j / 2]) }
            }
        }
        return y
    }

    /// Joins `parts` (shapes `shapes`) along `axis` into `output`.
    static func concat<Element>(_ parts: [[Element]], _ shapes: [Shape], axis: Int, output: Shape) -> [Element] {
        let outer = output.count(before: axis)
        var y: [Element] = []
        y.reserveCapacity(output.elementCount)
        for row in 0..<outer {
            for (part, shape) in zip(parts, shapes) {
                let span = shape.count(from: axis)
                y.append(contentsOf: part[(row * span)..<((row + 1) * span)])
            }
        }
        return y
    }

    /// `x.narrow(axis, start, output[axis])`.
    static func slice<Element>(_ x: [Element], _ shape: Shape, axis: Int, start: Int, output: Shape) -> [Element] {
        let outer = shape.count(before: axis), inner = shape.count(from: axis + 1)
        let span = output[axis] * inner, sourceSpan = shape[axis] * inner
        var y: [Element] = []
        y.reserveCapacity(output.elementCount)
        for row in 0..<outer {
            let base = row * sourceSpan + start * inner
            y.append(contentsOf: x[base..<(base + span)])
        }
        return y
    }

    /// Output dim i is input dim `permutation[i]`.
    static func permute<Element>(_ x: [Element], _ shape: Shape, _ permutation: [Int]) -> [Element] {
        let output = Shape(permutation.map { shape[$0] })
        let sourceStrides = shape.strides
        // Walking the output in order, each output axis steps the source by its input axis's stride.
        let strides = permutation.map { sourceStrides[$0] }
        var y: [Element] = []
        y.reserveCapacity(x.count)
        var coordinate = [Int](repeating: 0, count: output.rank)
        var source = 0
        for _ in 0..<x.count {
            y.append(x[source])
            var axis = output.rank - 1
            while axis >= 0 {
                coordinate[axis] += 1
                source += strides[axis]
                if coordinate[axis] < output.dimensions[axis] { break }
                source -= strides[axis] * coordinate[axis]
                coordinate[axis] = 0
                axis -= 1
            }
        }
        return y
    }

    /// `table [V, D], ids [...] -> [..., D]`; an id outside `0..<V` is an error, never a crash.
    static func embedding(table: [Float], _ tableShape: Shape, ids: [Int32]) throws -> [Float] {
        let (rows, width) = (tableShape[0], tableShape[1])
        var y: [Float] = []
        y.reserveCapacity(ids.count * width)
        for id in ids {
            guard id >= 0, Int(id) < rows else {
                throw GraphError("embedding", "id \(id) out of range for a table of \(rows) rows \(tableShape)")
            }
            y.append(contentsOf: table[(Int(id) * width)..<((Int(id) + 1) * width)])
        }
        return y
    }
}
