/// A graph that cannot fit the backend's memory, found while planning it, before anything is
/// allocated: the bytes it needs, the bytes there are, and which limit decided it.
public struct MemoryLimitError: Error, CustomStringConvertible, Sendable, Equatable {
    public let neededBytes: Int
    public let availableBytes: Int
    /// What the bytes are measured against, e.g. `maxMemoryAllocationSize of 'llvmpipe'`.
    public let limit: String
    /// What needs them, e.g. `the graph's activations at their peak`.
    public let need: String

    public init(needed: Int, available: Int, limit: String, need: String) {
        neededBytes = needed
        availableBytes = available
        self.limit = limit
        self.need = need
    }

    public var description: String {
        "\(need) need \(Self.format(neededBytes)) (\(neededBytes) bytes) but the \(limit) is \(Self.format(availableBytes)) (\(availableBytes) bytes)"
    }

    /// `1.5 GiB`, `12.3 MiB`.
    public static func format(_ bytes: Int) -> String {
        let gibibytes = Double(bytes) / Double(1 << 30)
        return gibibytes >= 1 ? "\((gibibytes * 100).rounded() / 100) GiB" : "\((Double(bytes) / Double(1 << 20) * 10).rounded() / 10) MiB"
    }
}
