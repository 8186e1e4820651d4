import Foundation

/// Prepared graphs (or objects wrapping one) kept by key — usually the shapes they were built
/// for — so that a long-running process alternating between a few image sizes prepares each
/// once. The least recently used entries leave when more than `capacity` are held or their
/// activations (`bytes`) add up to more than `byteBudget`; the entry just used always stays.
///
/// With weights resident (`ResidentWeights`) an entry costs only its activations and command
/// buffer, so keeping a few shapes is cheap; without, each entry holds its own weight copy.
public final class PreparedGraphCache<Key: Hashable, Value>: @unchecked Sendable {
    public let capacity: Int
    public let byteBudget: Int
    private let lock = NSLock()
    /// Least recently used first.
    private var entries: [(key: Key, value: Value, bytes: Int)] = []

    public init(capacity: Int = 4, byteBudget: Int = .max) {
        self.capacity = max(capacity, 1)
        self.byteBudget = byteBudget
    }

    /// The value for `key`, made by `make` when it is not held; `bytes` says what a value holds
    /// on the device. A value that fails to be made leaves the cache as it was.
    public func value(for key: Key, bytes: (Value) -> Int, make: () throws -> Value) rethrows -> Value {
        try lock.withLock {
            if let index = entries.firstIndex(where: { $0.key == key }) {
                let entry = entries.remove(at: index)
                entries.append(entry)
                return entry.value
            }
            let made = try make()
            entries.append((key, made, bytes(made)))
            while entries.count > 1, entries.count > capacity || entries.reduce(0, { $0 + $1.bytes }) > byteBudget {
                entries.removeFirst()
            }
            return made
        }
    }

    /// The keys held, least recently used first.
    public var keys: [Key] { lock.withLock { entries.map(\.key) } }

    /// The values held, least recently used first.
    public var values: [Value] { lock.withLock { entries.map(\.value) } }

    /// Bytes the held values take on the device.
    public var bytes: Int { lock.withLock { entries.reduce(0) { $0 + $1.bytes } } }

    /// Drops every value (their device memory goes once nothing else holds them).
    public func removeAll() {
        lock.withLock { entries.removeAll() }
    }
}

extension PreparedGraphCache where Value == any PreparedGraph {
    /// The prepared graph for `key`, sized by its activation arena.
    public func graph(for key: Key, make: () throws -> any PreparedGraph) rethrows -> any PreparedGraph {
        try value(for: key, bytes: { $0.memoryPlan.arenaBytes }, make: make)
    }
}
