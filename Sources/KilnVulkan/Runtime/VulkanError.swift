import CVulkan

/// A failure in the Vulkan runtime, naming the call or the limit involved.
public enum VulkanError: Error, CustomStringConvertible, Sendable {
    /// A Vulkan call returned an error code.
    case call(String, Int32)
    /// The device cannot do what was asked (missing feature, version or layer).
    case unsupported(String)
    /// A request exceeds a device limit; the message names the limit and both numbers.
    case limitExceeded(String)
    /// No device matched `--device` / KILN_DEVICE.
    case noDevice(String)
    /// A GLSL kernel failed to compile: file, line and glslang's message.
    case shaderCompilation(file: String, line: Int?, log: String)

    public var description: String {
        switch self {
        case .call(let name, let code): "\(name) failed with \(VulkanError.resultName(code)) (\(code))"
        case .unsupported(let message): "unsupported: \(message)"
        case .limitExceeded(let message): "device limit exceeded: \(message)"
        case .noDevice(let message): message
        case .shaderCompilation(let file, let line, let log):
            "shader \(file)\(line.map { ":\($0)" } ?? "") failed to compile:\n\(log)"
        }
    }

    static func resultName(_ code: Int32) -> String {
        switch VkResult(rawValue: code) {
        case VK_ERROR_OUT_OF_HOST_MEMORY: "VK_ERROR_OUT_OF_HOST_MEMORY"
        case VK_ERROR_OUT_OF_DEVICE_MEMORY: "VK_ERROR_OUT_OF_DEVICE_MEMORY"
        case VK_ERROR_INITIALIZATION_FAILED: "VK_ERROR_INITIALIZATION_FAILED"
        case VK_ERROR_DEVICE_LOST: "VK_ERROR_DEVICE_LOST"
        case VK_ERROR_LAYER_NOT_PRESENT: "VK_ERROR_LAYER_NOT_PRESENT"
        case VK_ERROR_EXTENSION_NOT_PRESENT: "VK_ERROR_EXTENSION_NOT_PRESENT"
        case VK_ERROR_FEATURE_NOT_PRESENT: "VK_ERROR_FEATURE_NOT_PRESENT"
        case VK_ERROR_INCOMPATIBLE_DRIVER: "VK_ERROR_INCOMPATIBLE_DRIVER"
        case VK_ERROR_TOO_MANY_OBJECTS: "VK_ERROR_TOO_MANY_OBJECTS"
        case VK_TIMEOUT: "VK_TIMEOUT"
        default: "VkResult"
        }
    }
}

/// Throws unless `result` is VK_SUCCESS.
@inline(__always)
func check(_ result: VkResult, _ call: @autoclosure () -> String) throws {
    if result != VK_SUCCESS { throw VulkanError.call(call(), result.rawValue) }
}

/// Reads a fixed-size C char array (imported as a tuple) as a String.
func string<T>(fromCharacters tuple: T) -> String {
    withUnsafeBytes(of: tuple) { raw in
        let bytes = raw.prefix(while: { $0 != 0 })
        return String(decoding: bytes, as: UTF8.self)
    }
}
