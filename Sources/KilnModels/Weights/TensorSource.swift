import KilnGraph

/// Where a model's weights come from: a safetensors file, several shards, or tensors in memory.
/// Names are the checkpoint's own keys.
public protocol TensorSource: Sendable {
    /// Shape of the tensor stored under `name`, or nil if there is none.
    func shape(of name: String) -> Shape?
    /// The tensor's values as f32 (whatever its stored type).
    func load(_ name: String) throws -> HostTensor
    /// Every key.
    var names: [String] { get }
    /// What to call this source in errors (usually a file path).
    var origin: String { get }
    /// Shape of `name` when the model expects `expected`: sources that synthesise weights answer
    /// with the expectation; files answer with what they hold.
    func shape(of name: String, expected: Shape) -> Shape?
}

extension TensorSource {
    public func shape(of name: String, expected: Shape) -> Shape? { shape(of: name) }
}

/// Tensors held in memory, for tests and models built from random weights.
public struct InMemoryTensors: TensorSource {
    public var tensors: [String: HostTensor]
    public let origin: String

    public init(_ tensors: [String: HostTensor], origin: String = "memory") {
        self.tensors = tensors
        self.origin = origin
    }

    public func shape(of name: String) -> Shape? { tensors[name]?.shape }
    public var names: [String] { tensors.keys.sorted() }

    public func load(_ name: String) throws -> HostTensor {
        guard let tensor = tensors[name] else { throw WeightError.missing(origin: origin, name: name, expected: nil) }
        return tensor
    }
}

/// A weight that is missing, mis-shaped or left over, naming the file, the tensor and what was expected.
public enum WeightError: Error, CustomStringConvertible, Equatable {
    case missing(origin: String, name: String, expected: Shape?)
    case wrongShape(origin: String, name: String, expected: Shape, found: Shape)
    case unused(origin: String, names: [String])

    public var description: String {
        switch self {
        case .missing(let origin, let name, let expected):
            "\(origin): tensor '\(name)' is missing\(expected.map { " (expected shape \($0))" } ?? "")"
        case .wrongShape(let origin, let name, let expected, let found):
            "\(origin): tensor '\(name)' has shape \(found), expected \(expected)"
        case .unused(let origin, let names):
            "\(origin): \(names.count) tensor(s) not used by the model: \(names.prefix(8).joined(separator: ", "))\(names.count > 8 ? ", ..." : "")"
        }
    }
}
