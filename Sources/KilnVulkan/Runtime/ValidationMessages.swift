import Foundation

/// Every message the Khronos validation layer reported (warnings and errors), collected by the
/// debug-utils messenger when KILN_VALIDATE=1. Tests fail if it is not empty.
public final class ValidationMessages: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [String] = []

    public var all: [String] { lock.withLock { stored } }

    func append(_ message: String) { lock.withLock { stored.append(message) } }
}
