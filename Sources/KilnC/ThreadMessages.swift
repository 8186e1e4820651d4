import Foundation

/// The error messages of one context (or of the calls that have none), one per thread: what
/// `kiln_last_error` returns. Keeping them per thread means a message handed to one thread is
/// never replaced or freed by another thread's call on the same context.
///
/// Each message is a C string of its own, valid until the same thread's next call records a new
/// one or clears it; the last ones are freed with their owner.
final class ThreadMessages: @unchecked Sendable {
    private let lock = NSLock()
    private var messages: [pthread_t: UnsafeMutablePointer<CChar>] = [:]

    /// Records `message` as the calling thread's last error, or clears it (nil, after a success).
    func record(_ message: String?) {
        let copy = message.flatMap { strdup($0) }
        let thread = pthread_self()
        lock.lock()
        let previous = messages[thread]
        messages[thread] = copy
        lock.unlock()
        free(previous)
    }

    /// The calling thread's last error, or "" when its last call succeeded.
    func current() -> UnsafePointer<CChar> {
        lock.lock()
        defer { lock.unlock() }
        if let message = messages[pthread_self()] { return UnsafePointer(message) }
        return StaticCString.empty
    }

    deinit {
        messages.values.forEach { free($0) }
    }

    /// Errors of calls without a context (`kiln_open`, `kiln_devices_json`): the only messages
    /// not owned by a context, kept per thread like the others.
    static let withoutContext = ThreadMessages()
}

/// C strings that live as long as the program: literals in read-only memory, never freed.
enum StaticCString {
    static var empty: UnsafePointer<CChar> { pointer(to: "") }

    /// A pointer to `literal`'s NUL-terminated UTF-8 bytes.
    static func pointer(to literal: StaticString) -> UnsafePointer<CChar> {
        UnsafeRawPointer(literal.utf8Start).assumingMemoryBound(to: CChar.self)
    }
}
