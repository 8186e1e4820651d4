/// The element type a tensor is *stored* in. Arithmetic is always f32 (see DESIGN.md, Numerics):
/// f16 and bf16 only change how many bytes a tensor occupies and how values are rounded on store.
public enum DType: String, Sendable, Hashable, Codable, CaseIterable {
    case float32
    case float16
    case bfloat16
    case int32

    /// Bytes per element.
    public var byteCount: Int {
        switch self {
        case .float32, .int32: 4
        case .float16, .bfloat16: 2
        }
    }

    public var isFloatingPoint: Bool { self != .int32 }

    /// Short name used in CLI output and case names: `f32`, `f16`, `bf16`, `i32`.
    public var shortName: String {
        switch self {
        case .float32: "f32"
        case .float16: "f16"
        case .bfloat16: "bf16"
        case .int32: "i32"
        }
    }
}
