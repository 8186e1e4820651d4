/// A dense row-major float32 array with a shape, the sample and model-output type of the samplers.
///
/// Deliberately plain: schedulers are elementwise over the flattened scalars, and a latent is
/// `[B, C, H, W]` (`[1, 4, 64, 64]` for SD1 at 512x512).
public struct ShapedArray: Sendable, Equatable {
    public var shape: [Int]
    public var scalars: [Float]

    public init(shape: [Int], scalars: [Float]) {
        precondition(shape.reduce(1, *) == scalars.count, "shape \(shape) does not hold \(scalars.count) scalars")
        self.shape = shape
        self.scalars = scalars
    }

    public init(repeating value: Float, shape: [Int]) {
        self.init(shape: shape, scalars: [Float](repeating: value, count: shape.reduce(1, *)))
    }

    /// The same shape with every scalar replaced by `transform(scalar)`.
    public func map(_ transform: (Float) -> Float) -> ShapedArray {
        ShapedArray(shape: shape, scalars: scalars.map(transform))
    }

    /// The same shape combining both arrays scalar by scalar; shapes must match.
    public func zip(_ other: ShapedArray, _ combine: (Float, Float) -> Float) -> ShapedArray {
        precondition(shape == other.shape, "shape \(shape) does not match \(other.shape)")
        var result = scalars
        for index in result.indices { result[index] = combine(scalars[index], other.scalars[index]) }
        return ShapedArray(shape: shape, scalars: result)
    }
}
