/// A tensor's values in host memory, row-major. Floating-point tensors hold their values as f32
/// in `scalars` whatever `dtype` says (the dtype is how a device stores them); int32 tensors hold
/// `integers`.
public struct HostTensor: Sendable, Equatable {
    public var shape: Shape
    public var dtype: DType
    public var scalars: [Float]
    public var integers: [Int32]

    public init(shape: Shape, scalars: [Float], dtype: DType = .float32) {
        precondition(scalars.count == shape.elementCount, "\(scalars.count) values for shape \(shape)")
        self.shape = shape
        self.dtype = dtype
        self.scalars = scalars
        self.integers = []
    }

    public init(shape: Shape, integers: [Int32]) {
        precondition(integers.count == shape.elementCount, "\(integers.count) values for shape \(shape)")
        self.shape = shape
        self.dtype = .int32
        self.scalars = []
        self.integers = integers
    }

    public static func zeros(_ shape: Shape, dtype: DType = .float32) -> HostTensor {
        dtype == .int32
            ? HostTensor(shape: shape, integers: .init(repeating: 0, count: shape.elementCount))
            : HostTensor(shape: shape, scalars: .init(repeating: 0, count: shape.elementCount), dtype: dtype)
    }

    /// The same values rounded to what `dtype` can store (f16 / bf16 round to nearest even).
    public func roundedToStorage() -> HostTensor {
        var copy = self
        switch dtype {
        case .float16: copy.scalars = scalars.map { Float(Float16($0)) }
        case .bfloat16: copy.scalars = scalars.map { BFloat16.round($0) }
        case .float32, .int32: break
        }
        return copy
    }
}

/// bfloat16 conversions (the top 16 bits of an f32, rounded to nearest even).
public enum BFloat16 {
    public static func bits(_ value: Float) -> UInt16 {
        let raw = value.bitPattern
        if value.isNaN { return UInt16(raw >> 16) | 0x40 }
        let rounding = 0x7FFF + ((raw >> 16) & 1)
        return UInt16((raw &+ rounding) >> 16)
    }

    public static func value(_ bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }
    public static func round(_ value: Float) -> Float { Self.value(bits(value)) }
}
