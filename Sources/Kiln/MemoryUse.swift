import Foundation
import KilnGraph
import KilnVulkan

/// What a long-running process holds: its resident set, and the device memory a backend has
/// reserved (device-local blocks; nothing for the CPU backend, whose tensors are in the
/// resident set). For leak checks over thousands of requests and for servers' memory routes.
public struct MemoryUse: Sendable, Equatable, Codable {
    public let residentBytes: Int
    public let deviceBytes: Int

    public init(residentBytes: Int, deviceBytes: Int) {
        self.residentBytes = residentBytes
        self.deviceBytes = deviceBytes
    }

    /// Now, for this process and `backend`.
    public static func current(_ backend: Backend? = nil) -> MemoryUse {
        MemoryUse(residentBytes: residentSetBytes(), deviceBytes: (backend as? VulkanBackend)?.device.allocator.reservedBytes(.deviceLocal) ?? 0)
    }

    /// The resident set from `/proc/self/statm` (pages), 0 where there is none.
    public static func residentSetBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    enum CodingKeys: String, CodingKey {
        case residentBytes = "resident_bytes"
        case deviceBytes = "device_bytes"
    }
}
