import Foundation
import Kiln

/// The backend a command runs on (`--backend vulkan|cpu`, `--device`), with the names image
/// metadata records. A device that cannot be opened is bad input (exit 2).
struct DeviceChoice {
    let backend: Backend
    let name: String
    let driver: String?

    static func open(backend name: String, selector: String?) throws -> DeviceChoice {
        switch name {
        case "cpu":
            return DeviceChoice(backend: CPUBackend(), name: "cpu", driver: nil)
        case "vulkan":
            do {
                let vulkan = try VulkanBackend(selector: selector)
                let info = vulkan.device.info
                return DeviceChoice(backend: vulkan, name: info.name, driver: "\(info.driverName) \(info.driverInfo)")
            } catch {
                throw CommandFailure.badInput("--device \(selector ?? "(default)"): \(error)")
            }
        default:
            throw CommandFailure.badInput("--backend must be vulkan or cpu, got '\(name)'")
        }
    }

    /// The storage type weights take: the CPU backend computes in f32 whatever is asked.
    func storage(_ asked: DType) -> DType { backend is CPUBackend ? .float32 : asked }
}
