import Kiln

/// One Vulkan backend for the whole test run (lavapipe here). Tests are meant to run with
/// KILN_VALIDATE=1, so every message of the validation layer is collected and checked.
enum TestDevice {
    static let backend: Result<VulkanBackend, Error> = Result { try VulkanBackend() }

    static func vulkan() throws -> VulkanBackend { try backend.get() }

    /// The same device with the tuned register tiles on CPU devices (the kernels the op-case table's
    /// shapes were chosen to reach), else its automatic kernels.
    static func tuned() throws -> VulkanBackend {
        let automatic = try vulkan()
        return automatic.usesRegisterBlockedKernels ? VulkanBackend(device: automatic.device, kernelVariant: .registerBlocked) : automatic
    }

    /// Validation messages so far (empty when KILN_VALIDATE is unset).
    static var validationMessages: [String] { (try? backend.get().device.instance.validationMessages.all) ?? [] }
}
