/// Packs one kernel's push-constant block in std430 order and records each member's name and
/// offset, so a test can check them against the GLSL block reflected from the SPIR-V.
/// Tensors are `uvec2` device addresses (8-byte aligned); everything else is a 4-byte scalar.
public struct PushConstants: Sendable {
    public private(set) var bytes: [UInt8] = []
    public private(set) var fields: [(name: String, offset: Int)] = []

    public init() {}

    public mutating func address(_ name: String, _ value: UInt64) {
        while bytes.count % 8 != 0 { bytes.append(0) }
        append(name, value, width: 8)
    }

    public mutating func uint(_ name: String, _ value: Int) {
        precondition(value >= 0 && value <= Int(UInt32.max), "push constant \(name) = \(value) does not fit uint")
        append(name, UInt64(value), width: 4)
    }

    public mutating func bool(_ name: String, _ value: Bool) { uint(name, value ? 1 : 0) }

    /// A `uint name[n]` member (std430: 4-byte stride).
    public mutating func uints(_ name: String, _ values: [Int]) {
        fields.append((name, bytes.count))
        for value in values {
            precondition(value >= 0 && value <= Int(UInt32.max), "push constant \(name) element \(value) does not fit uint")
            for byte in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * byte))) }
        }
    }

    public mutating func float(_ name: String, _ value: Float) { append(name, UInt64(value.bitPattern), width: 4) }

    private mutating func append(_ name: String, _ value: UInt64, width: Int) {
        fields.append((name, bytes.count))
        for byte in 0..<width { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(8 * byte))) }
    }
}
