/// An error raised while building or running a graph. The message names the op and the shapes,
/// e.g. `[groupNorm] channels 320 not divisible by groups 30`.
public struct GraphError: Error, CustomStringConvertible, Sendable, Equatable {
    public let operation: String
    public let message: String

    public init(_ operation: String, _ message: String) {
        self.operation = operation
        self.message = message
    }

    public var description: String { "[\(operation)] \(message)" }
}
