/// A tensor's dimensions, outermost first (`[B, C, H, W]`). Tensors are contiguous and row-major.
public struct Shape: Hashable, Sendable, CustomStringConvertible, ExpressibleByArrayLiteral, Codable {
    public var dimensions: [Int]

    public init(_ dimensions: [Int]) { self.dimensions = dimensions }
    public init(arrayLiteral elements: Int...) { self.dimensions = elements }

    public var rank: Int { dimensions.count }
    /// Number of elements (1 for a scalar of rank 0).
    public var elementCount: Int { dimensions.reduce(1, *) }
    public subscript(axis: Int) -> Int { dimensions[axis < 0 ? axis + rank : axis] }
    public var last: Int { dimensions.last ?? 1 }

    /// Row-major element strides.
    public var strides: [Int] {
        var result = [Int](repeating: 1, count: rank)
        var running = 1
        for axis in stride(from: rank - 1, through: 0, by: -1) {
            result[axis] = running
            running *= dimensions[axis]
        }
        return result
    }

    /// Product of all dimensions before `axis` (the number of independent rows).
    public func count(before axis: Int) -> Int { dimensions[..<axis].reduce(1, *) }
    /// Product of all dimensions from `axis` on.
    public func count(from axis: Int) -> Int { dimensions[axis...].reduce(1, *) }

    public var description: String { "[" + dimensions.map(String.init).joined(separator: ", ") + "]" }
}
