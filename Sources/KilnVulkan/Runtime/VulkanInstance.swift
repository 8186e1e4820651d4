import CVulkan
import Foundation

/// The process-wide Vulkan instance. With `KILN_VALIDATE=1` it enables the Khronos validation
/// layer and a debug-utils messenger that records every warning and error in `validationMessages`;
/// `KILN_VALIDATE=sync` also turns on the layer's synchronization validation (hazards between
/// dispatches and copies that lack a barrier).
public final class VulkanInstance: @unchecked Sendable {
    public let handle: VkInstance
    public let validationEnabled: Bool
    public let synchronizationValidationEnabled: Bool
    public let validationMessages = ValidationMessages()
    private var messenger: VkDebugUtilsMessengerEXT?

    /// The shared instance, created on first use.
    public static func shared() throws -> VulkanInstance {
        try sharedInstance.get()
    }

    private static let sharedInstance: Result<VulkanInstance, Error> = Result {
        switch ProcessInfo.processInfo.environment["KILN_VALIDATE"] {
        case nil, "", "0": try VulkanInstance(validate: false, synchronization: false)
        case "1": try VulkanInstance(validate: true, synchronization: false)
        case "sync": try VulkanInstance(validate: true, synchronization: true)
        case let other?: throw VulkanError.unsupported("KILN_VALIDATE must be 1 or sync, got '\(other)'")
        }
    }

    private init(validate: Bool, synchronization: Bool) throws {
        validationEnabled = validate
        synchronizationValidationEnabled = synchronization
        var layers: [String] = []
        var extensions: [String] = []
        if validate {
            let available = try Self.availableLayers()
            guard available.contains("VK_LAYER_KHRONOS_validation") else {
                throw VulkanError.unsupported(
                    "KILN_VALIDATE needs the Khronos validation layer (Debian/Ubuntu: apt-get install vulkan-validationlayers)")
            }
            layers.append("VK_LAYER_KHRONOS_validation")
            extensions.append(VK_EXT_DEBUG_UTILS_EXTENSION_NAME)
            // The layer itself provides the extension that switches its optional checks on.
            if synchronization { extensions.append(VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME) }
        }
        let enabledFeatures = [VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT]
        let created: VkInstance = try withCStrings(layers) { layerPointers in
            try withCStrings(extensions) { extensionPointers in
                try enabledFeatures.withUnsafeBufferPointer { featureList in
                    var features = VkValidationFeaturesEXT()
                    features.sType = VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT
                    features.enabledValidationFeatureCount = UInt32(featureList.count)
                    features.pEnabledValidationFeatures = featureList.baseAddress
                    return try withUnsafePointer(to: &features) { featuresPointer in
                        try "Kiln".withCString { appName in
                            var application = VkApplicationInfo()
                            application.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO
                            application.pApplicationName = appName
                            application.pEngineName = appName
                            application.apiVersion = vkMakeApiVersion(1, 3)
                            return try withUnsafePointer(to: &application) { applicationPointer in
                                var info = VkInstanceCreateInfo()
                                info.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO
                                if synchronization { info.pNext = UnsafeRawPointer(featuresPointer) }
                                info.pApplicationInfo = applicationPointer
                                info.enabledLayerCount = UInt32(layerPointers.count)
                                info.ppEnabledLayerNames = layerPointers.baseAddress
                                info.enabledExtensionCount = UInt32(extensionPointers.count)
                                info.ppEnabledExtensionNames = extensionPointers.baseAddress
                                var instance: VkInstance?
                                try check(vkCreateInstance(&info, nil, &instance), "vkCreateInstance")
                                guard let instance else { throw VulkanError.call("vkCreateInstance", VK_ERROR_INITIALIZATION_FAILED.rawValue) }
                                return instance
                            }
                        }
                    }
                }
            }
        }
        handle = created
        if validate { try installMessenger() }
    }

    deinit {
        if let messenger, let destroy = loadFunction("vkDestroyDebugUtilsMessengerEXT", as: PFN_vkDestroyDebugUtilsMessengerEXT.self) {
            destroy(handle, messenger, nil)
        }
        vkDestroyInstance(handle, nil)
    }

    private func installMessenger() throws {
        guard let create = loadFunction("vkCreateDebugUtilsMessengerEXT", as: PFN_vkCreateDebugUtilsMessengerEXT.self) else {
            throw VulkanError.unsupported("VK_EXT_debug_utils is not available")
        }
        var info = VkDebugUtilsMessengerCreateInfoEXT()
        info.sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT
        info.messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT.rawValue
            | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT.rawValue
        info.messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT.rawValue
            | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT.rawValue
            | VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT.rawValue
        info.pfnUserCallback = { severity, _, data, user in
            guard let user, let data else { return VkBool32(VK_FALSE) }
            let collector = Unmanaged<ValidationMessages>.fromOpaque(user).takeUnretainedValue()
            let text = data.pointee.pMessage.map { String(cString: $0) } ?? "(no message)"
            let level = severity == VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT ? "error" : "warning"
            collector.append("\(level): \(text)")
            return VkBool32(VK_FALSE)
        }
        info.pUserData = Unmanaged.passUnretained(validationMessages).toOpaque()
        var created: VkDebugUtilsMessengerEXT?
        try check(create(handle, &info, nil, &created), "vkCreateDebugUtilsMessengerEXT")
        messenger = created
    }

    private func loadFunction<T>(_ name: String, as type: T.Type) -> T? {
        guard let pointer = vkGetInstanceProcAddr(handle, name) else { return nil }
        return unsafeBitCast(pointer, to: type)
    }

    private static func availableLayers() throws -> [String] {
        var count: UInt32 = 0
        try check(vkEnumerateInstanceLayerProperties(&count, nil), "vkEnumerateInstanceLayerProperties")
        var properties = [VkLayerProperties](repeating: VkLayerProperties(), count: Int(count))
        try check(vkEnumerateInstanceLayerProperties(&count, &properties), "vkEnumerateInstanceLayerProperties")
        return properties.prefix(Int(count)).map { string(fromCharacters: $0.layerName) }
    }

    /// Every physical device, in the driver's order.
    public func physicalDevices() throws -> [PhysicalDevice] {
        var count: UInt32 = 0
        try check(vkEnumeratePhysicalDevices(handle, &count, nil), "vkEnumeratePhysicalDevices")
        var handles = [VkPhysicalDevice?](repeating: nil, count: Int(count))
        try check(vkEnumeratePhysicalDevices(handle, &count, &handles), "vkEnumeratePhysicalDevices")
        return handles.prefix(Int(count)).enumerated().compactMap { index, handle in
            handle.map { PhysicalDevice(handle: $0, index: index) }
        }
    }
}

func vkMakeApiVersion(_ major: UInt32, _ minor: UInt32, _ patch: UInt32 = 0) -> UInt32 {
    (major << 22) | (minor << 12) | patch
}

/// Calls `body` with a C array of C strings that stays valid for the call.
func withCStrings<R>(_ strings: [String], _ body: (UnsafeBufferPointer<UnsafePointer<CChar>?>) throws -> R) rethrows -> R {
    let duplicates = strings.map { strdup($0) }
    defer { duplicates.forEach { free($0) } }
    let pointers = duplicates.map { UnsafePointer($0) }
    return try pointers.withUnsafeBufferPointer(body)
}
