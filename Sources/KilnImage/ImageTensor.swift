/// A float32 tensor of images as diffusers passes them to and from the VAE: `values` row-major in
/// `shape` `[B, C, H, W]`. KilnImage has no dependency on Kiln's graph types; callers wrap `values`
/// and `shape` in whatever tensor type they use.
public struct ImageTensor: Sendable, Equatable {
    /// `[B, C, H, W]`, every dimension positive.
    public let shape: [Int]
    /// `shape.reduce(1, *)` values, row-major.
    public let values: [Float]

    /// Fails unless `shape` has four positive dimensions whose product is `values.count`.
    public init(shape: [Int], values: [Float]) throws {
        guard shape.count == 4, shape.allSatisfy({ $0 > 0 }) else {
            throw ImageTensorError.invalidShape(shape: shape, detail: "need four positive dimensions [B, C, H, W]")
        }
        var count = 1
        for dimension in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            guard !overflow else { throw ImageTensorError.invalidShape(shape: shape, detail: "more than Int.max elements") }
            count = product
        }
        guard count == values.count else {
            throw ImageTensorError.invalidShape(shape: shape, detail: "holds \(count) values, got \(values.count)")
        }
        self.shape = shape
        self.values = values
    }

    init(checkedShape shape: [Int], values: [Float]) {
        self.shape = shape
        self.values = values
    }

    public var batch: Int { shape[0] }
    public var channels: Int { shape[1] }
    public var height: Int { shape[2] }
    public var width: Int { shape[3] }
}

/// Why images and a float tensor could not be converted into each other.
public enum ImageTensorError: Error, CustomStringConvertible, Equatable, Sendable {
    case invalidShape(shape: [Int], detail: String)
    /// No images were given.
    case empty
    /// Image `index` is `width` x `height`, but the batch is `expectedWidth` x `expectedHeight`.
    case sizeMismatch(index: Int, width: Int, height: Int, expectedWidth: Int, expectedHeight: Int)

    public var description: String {
        switch self {
        case .invalidShape(let shape, let detail): "image tensor shape \(shape): \(detail)"
        case .empty: "no images to convert"
        case .sizeMismatch(let index, let width, let height, let expectedWidth, let expectedHeight):
            "image \(index) is \(width) x \(height), but the batch is \(expectedWidth) x \(expectedHeight)"
        }
    }
}
