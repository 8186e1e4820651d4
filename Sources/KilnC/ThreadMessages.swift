import Foundation

/// The error messages of one context (or of the calls that have none), one per thread: what
/// `kiln_last_error` returns. Keeping them per thread means a message handed to one thread is
/// never replaced or freed by another thread's call on the same context.
///
/// Each message is a C string of its own, valid until the same thread's next call records a new
/// one or clears it. Threads are told apart by `CurrentThread.serial`, which is never reused
/// (pthread ids are, so a new thread could otherwise see a dead thread's message), and a thread
/// that ends takes its messages with it; the rest are freed with their owner.
final class ThreadMessages: @unchecked Sendable {
    private let lock = NSLock()
    private var messages: [UInt64: UnsafeMutablePointer<CChar>] = [:]

    /// Records `message` as the calling thread's last error, or clears it (nil, after a success).
    func record(_ message: String?) {
        let copy = message.flatMap { strdup($0) }
        guard copy != nil || CurrentThread.existingRecord() != nil else { return }
        let thread = CurrentThread.record()
        lock.lock()
        let previous = messages[thread.serial]
        messages[thread.serial] = copy
        lock.unlock()
        free(previous)
        if copy != nil { thread.remember(self) }
    }

    /// The calling thread's last error, or "" when its last call succeeded (or it made none).
    func current() -> UnsafePointer<CChar> {
        guard let thread = CurrentThread.existingRecord() else { return StaticCString.empty }
        lock.lock()
        defer { lock.unlock() }
        if let message = messages[thread.serial] { return UnsafePointer(message) }
        return StaticCString.empty
    }

    /// Frees the message of the thread `serial`, which has ended.
    func forget(_ serial: UInt64) {
        lock.lock()
        let message = messages.removeValue(forKey: serial)
        lock.unlock()
        free(message)
    }

    deinit {
        messages.values.forEach { free($0) }
    }

    /// Errors of calls without a context (`kiln_open`, `kiln_devices_json`): the only messages
    /// not owned by a context, kept per thread like the others.
    static let withoutContext = ThreadMessages()
}

/// What the library knows about one thread that has called it: a serial number and the message
/// tables holding a message of it, so they can forget it when the thread ends. Lives in the
/// thread's own storage (a pthread key) and is only touched by that thread.
final class ThreadRecord: @unchecked Sendable {
    private struct WeakTable {
        weak var table: ThreadMessages?
    }

    let serial: UInt64
    private var tables: [ObjectIdentifier: WeakTable] = [:]

    init(serial: UInt64) {
        self.serial = serial
    }

    /// Notes that `table` holds a message of this thread (dropping tables that are gone).
    func remember(_ table: ThreadMessages) {
        let identifier = ObjectIdentifier(table)
        guard tables[identifier]?.table !== table else { return }
        tables = tables.filter { $0.value.table != nil }
        tables[identifier] = WeakTable(table: table)
    }

    /// The thread is ending: every table still there frees its message.
    func end() {
        for entry in tables.values { entry.table?.forget(serial) }
        tables = [:]
    }
}

/// The calling thread's `ThreadRecord`, in a pthread key whose destructor ends it when the
/// thread exits.
enum CurrentThread {
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { pointer in
            guard let pointer else { return }
            let record = Unmanaged<ThreadRecord>.fromOpaque(pointer).takeRetainedValue()
            record.end()
        }
        return key
    }()

    private static let serials = SerialNumbers()

    /// The calling thread's record, if it has one.
    static func existingRecord() -> ThreadRecord? {
        pthread_getspecific(key).map { Unmanaged<ThreadRecord>.fromOpaque($0).takeUnretainedValue() }
    }

    /// The calling thread's record, made on its first use.
    static func record() -> ThreadRecord {
        if let record = existingRecord() { return record }
        let record = ThreadRecord(serial: serials.next())
        pthread_setspecific(key, Unmanaged.passRetained(record).toOpaque())
        return record
    }
}

/// 1, 2, 3, ...: one number per thread the library meets, never reused.
final class SerialNumbers: @unchecked Sendable {
    private let lock = NSLock()
    private var last: UInt64 = 0

    func next() -> UInt64 {
        lock.lock()
        defer { lock.unlock() }
        last += 1
        return last
    }
}

/// C strings that live as long as the program: literals in read-only memory, never freed.
enum StaticCString {
    static var empty: UnsafePointer<CChar> { pointer(to: "") }

    /// A pointer to `literal`'s NUL-terminated UTF-8 bytes.
    static func pointer(to literal: StaticString) -> UnsafePointer<CChar> {
        UnsafeRawPointer(literal.utf8Start).assumingMemoryBound(to: CChar.self)
    }
}
