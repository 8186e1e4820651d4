import Foundation

/// A value guarded by a lock, for state that the HTTP handlers (Swift tasks) and the worker
/// (a dispatch queue running a pipeline synchronously) both touch. A plain lock rather than an
/// actor because the pipeline's progress callback is synchronous and must not wait.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) {
        self.value = value
    }

    /// Runs `body` with exclusive access to the value.
    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }

    /// A copy of the value.
    var current: Value { withLock { $0 } }
}
