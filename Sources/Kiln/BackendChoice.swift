import Foundation
import KilnCPU
import KilnGraph
import KilnPipelines
import KilnVulkan

/// A backend opened by name, as front ends take it (`--backend vulkan|cpu`, `--device`), with
/// the names image metadata records, so every front end writes the same metadata for one device.
public struct BackendChoice {
    public let backend: Backend
    /// `vulkan` or `cpu`.
    public let kind: String
    /// The device's name (`cpu` for the CPU backend).
    public let deviceName: String
    public let driver: String?
    /// What `--device` said (nil: the default), to open the same device again.
    public let selector: String?

    /// The backends front ends offer.
    public static let kinds = ["vulkan", "cpu"]

    /// Opens `kind` on the device `selector` names (an index, UUID or name substring; nil: the
    /// `KILN_DEVICE` variable, else the most capable device). An unknown kind or a device that
    /// cannot be opened is a `PipelineError.invalidRequest` naming it.
    public static func open(_ kind: String, device selector: String? = nil) throws -> BackendChoice {
        switch kind {
        case "cpu":
            return BackendChoice(backend: CPUBackend(), kind: kind, deviceName: "cpu", driver: nil, selector: selector)
        case "vulkan":
            do {
                let vulkan = try VulkanBackend(selector: selector)
                let info = vulkan.device.info
                return BackendChoice(
                    backend: vulkan, kind: kind, deviceName: info.name, driver: "\(info.driverName) \(info.driverInfo)", selector: selector)
            } catch {
                throw PipelineError.invalidRequest("--device \(selector ?? "(default)"): \(error)")
            }
        default:
            throw PipelineError.invalidRequest("backend must be \(kinds.joined(separator: " or ")), got '\(kind)'")
        }
    }

    /// The same device opened anew, after this one was lost (`Backend.deviceFailure`).
    public func reopened() throws -> BackendChoice {
        do {
            return try Self.open(kind, device: selector)
        } catch {
            throw PipelineError.deviceLost("\(deviceName) could not be opened again: \(error)")
        }
    }

    /// The storage type weights take: the CPU backend computes in f32 whatever is asked.
    public func storage(_ asked: DType) -> DType { backend is CPUBackend ? .float32 : asked }
}

extension GenerationMetadata.Origin {
    /// Where images of `pipeline` on `device` are made: the model's folder or file name, the
    /// SHA-256 of its weights (cached, see `ModelHashCache`), the device and its driver.
    public init(pipeline: any DiffusionPipeline, device: BackendChoice) {
        self.init(model: pipeline.modelURL.deletingPathExtension().lastPathComponent,
                  modelSHA256: try? ModelHashCache.sha256(of: pipeline.modelURL),
                  backend: device.kind, device: device.deviceName, driver: device.driver)
    }
}
