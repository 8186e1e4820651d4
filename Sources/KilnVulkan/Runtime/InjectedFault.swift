import CVulkan
import Foundation

/// A failure the Vulkan backend reports as if the driver had returned it, so tests can show what
/// every front end does when a device is lost or out of memory (real drivers do both, rarely and
/// at random). Written `KIND@POINT:N`, as in `KILN_FAULT=device-lost@run:3`:
/// - `device-lost`: the call fails with VK_ERROR_DEVICE_LOST and the device stays lost, as a real
///   lost device does: every later run on it fails too, until the device is opened again.
/// - `out-of-device-memory`: the one call fails with VK_ERROR_OUT_OF_DEVICE_MEMORY.
/// - `run:N`: the N-th run of a prepared graph (one queue submission of its dispatches);
///   `allocation:N`: the N-th `vkAllocateMemory`. KILN_FAULT counts from 1 over the whole process;
///   `VulkanDevice.injectFault` counts on that device from the call.
public struct InjectedFault: Equatable, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case deviceLost = "device-lost"
        case outOfDeviceMemory = "out-of-device-memory"
    }

    public enum Point: String, Sendable {
        case run
        case allocation
    }

    public let kind: Kind
    public let point: Point
    /// 1-based.
    public let ordinal: Int

    public init(_ kind: Kind, at point: Point, ordinal: Int) {
        self.kind = kind
        self.point = point
        self.ordinal = ordinal
    }

    /// Reads `device-lost@run:3`; throws naming the expected form for anything else.
    public init(parsing text: String) throws {
        let parts = text.split(separator: "@", maxSplits: 1).map(String.init)
        let place = parts.count == 2 ? parts[1].split(separator: ":", maxSplits: 1).map(String.init) : []
        guard parts.count == 2, let kind = Kind(rawValue: parts[0]), place.count == 2, let point = Point(rawValue: place[0]),
              let ordinal = Int(place[1]), ordinal >= 1
        else {
            throw VulkanError.unsupported(
                "KILN_FAULT '\(text)': expected KIND@POINT:N with KIND device-lost or out-of-device-memory, POINT run or allocation, N >= 1")
        }
        self.init(kind, at: point, ordinal: ordinal)
    }

    public var description: String { "\(kind.rawValue)@\(point.rawValue):\(ordinal)" }

    var result: VkResult { kind == .deviceLost ? VK_ERROR_DEVICE_LOST : VK_ERROR_OUT_OF_DEVICE_MEMORY }
}

/// Faults waiting for their call, and the calls counted so far. One fault fires once: a device
/// opened again after it works, which is what recovery needs to show.
final class FaultInjector: @unchecked Sendable {
    /// KILN_FAULT's fault, counted over every device of the process.
    static let environment = FaultInjector(environment: ProcessInfo.processInfo.environment["KILN_FAULT"])

    private let lock = NSLock()
    /// Each fault with the count at which it fires.
    private var armed: [(fault: InjectedFault, at: Int)] = []
    private var counts: [InjectedFault.Point: Int] = [:]
    /// A malformed KILN_FAULT, reported when a device opens rather than ignored.
    let environmentError: Error?

    init(environment: String? = nil) {
        do {
            armed = try environment.map { text in try InjectedFault(parsing: text) }.map { [($0, $0.ordinal)] } ?? []
            environmentError = nil
        } catch {
            environmentError = error
        }
    }

    /// Arms `fault` counting from now.
    func arm(_ fault: InjectedFault) {
        lock.withLock { armed.append((fault, (counts[fault.point] ?? 0) + fault.ordinal)) }
    }

    /// Counts one call at `point`; the fault due now, if any.
    func fault(at point: InjectedFault.Point) -> InjectedFault? {
        lock.withLock {
            let count = (counts[point] ?? 0) + 1
            counts[point] = count
            guard let index = armed.firstIndex(where: { $0.fault.point == point && $0.at == count }) else { return nil }
            return armed.remove(at: index).fault
        }
    }
}

/// Whether one device still works, and the faults armed for it. Shared by the device and its
/// allocator, which keeps plain handles rather than the device.
final class DeviceHealth: @unchecked Sendable {
    private let lock = NSLock()
    private var lostBy: String?
    let faults = FaultInjector()

    /// The call that lost the device, once one has.
    var lostCall: String? { lock.withLock { lostBy } }

    func markLost(by call: String) {
        lock.withLock { if lostBy == nil { lostBy = call } }
    }

    /// Throws as the driver would for `call` at `point`: VK_ERROR_DEVICE_LOST once the device is
    /// lost, or the fault armed for this call (this device's own, then KILN_FAULT's).
    func check(_ point: InjectedFault.Point, call: String) throws {
        if lostCall != nil { throw VulkanError.call(call, VK_ERROR_DEVICE_LOST.rawValue) }
        // Both injectors count every call, so each fault's ordinal means what it says.
        let own = faults.fault(at: point), environment = FaultInjector.environment.fault(at: point)
        guard let fault = own ?? environment else { return }
        if fault.kind == .deviceLost { markLost(by: "\(call) (injected \(fault))") }
        throw VulkanError.call("\(call) (injected \(fault))", fault.result.rawValue)
    }
}

extension VulkanDevice {
    /// Makes this device fail once as `fault` says, counting from now: what KILN_FAULT does for
    /// a whole process, for tests that share their process with others.
    public func injectFault(_ fault: InjectedFault) {
        health.faults.arm(fault)
    }

    /// The call that lost this device (VK_ERROR_DEVICE_LOST, real or injected), once one has:
    /// nothing runs on it any more, and the caller must open the device again.
    public var lostBy: String? { health.lostCall }
}
