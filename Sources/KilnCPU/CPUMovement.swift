import KilnGraph

extension CPUKernels {
    static func upsampleNearest2x(_ x: [Float], _ shape: Shape) -> [Float] {
        let (planes, height, width) = (shape[0] * shape[1], shape[2], shape[3])
        var y = [Float](repeating: 0, count: x.count * 4)
        for plane in 0..<planes {
            for i in 0..<(2 * height) {
                for j in 0..<(2 * width) {
                    y[(plane * 2 * height + i) * 2 * width + j] = x[(plane * height + i / 2) * width + j / 2]
                }
            }
        }
        return y
    }

    static func concat(_ parts: [[Float]], _ shapes: [Shape], axis: Int, output: Shape) -> [Float] {
        let outer = output.count(before: axis)
        var y: [Float] = []
        y.reserveCapacity(output.elementCount)
        for row in 0..<outer {
            for (part, shape) in zip(parts, shapes) {
                let span = shape.count(from: axis)
                y.append(contentsOf: part[(row * span)..<((row + 1) * span)])
            }
        }
        return y
    }

    static func slice(_ x: [Float], _ shape: Shape, axis: Int, start: Int, output: Shape) -> [Float] {
        let outer = shape.count(before: axis), inner = shape.count(from: axis + 1)
        let span = output[axis] * inner, sourceSpan = shape[axis] * inner
        var y: [Float] = []
        y.reserveCapacity(output.elementCount)
        for row in 0..<outer {
            let base = row * sourceSpan + start * inner
            y.append(contentsOf: x[base..<(base + span)])
        }
        return y
    }

    static func permute(_ x: [Float], _ shape: Shape, _ permutation: [Int]) -> [Float] {
        let output = Shape(permutation.map { shape[$0] })
        let sourceStrides = shape.strides
        let strides = permutation.map { sourceStrides[$0] }
        var y = [Float](repeating: 0, count: x.count)
        var coordinate = [Int](repeating: 0, count: output.rank)
        var source = 0
        for index in 0..<y.count {
            y[index] = x[source]
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

    static func embedding(table: [Float], _ tableShape: Shape, ids: [Int32]) throws -> [Float] {
        let (rows, width) = (tableShape[0], tableShape[1])
        var y: [Float] = []
        y.reserveCapacity(ids.count * width)
        for id in ids {
            guard id >= 0, Int(id) < rows else {
                throw GraphError("embedding", "id \(id) out of range for table \(tableShape)")
            }
            y.append(contentsOf: table[(Int(id) * width)..<((Int(id) + 1) * width)])
        }
        return y
    }
}
