import Kiln

/// What the Khronos validation layer reported during a command run with KILN_VALIDATE (1 or
/// sync): each message and the count on stderr. Commands fail when it is not zero.
enum ValidationReport {
    /// Prints the messages so far; their count (0 without validation).
    static func print(_ backend: Backend) -> Int {
        guard let vulkan = backend as? VulkanBackend, vulkan.device.instance.validationEnabled else { return 0 }
        let messages = vulkan.device.instance.validationMessages.all
        for message in messages { printError("validation \(message)") }
        printError("validation messages: \(messages.count)")
        return messages.count
    }
}
