import CVulkan

/// One Vulkan physical device and the properties Kiln cares about (what `kiln devices` prints).
public struct PhysicalDevice: @unchecked Sendable {
    public let handle: VkPhysicalDevice
    /// Position in the driver's enumeration (what `--device 0` selects).
    public let index: Int
    public let info: DeviceInfo

    init(handle: VkPhysicalDevice, index: Int) {
        self.handle = handle
        self.index = index
        self.info = DeviceInfo(handle, index: index)
    }
}

/// A device's identity, limits and features, as plain values (Codable for `--json`).
public struct DeviceInfo: Codable, Sendable {
    public enum Kind: String, Codable, Sendable {
        case discrete, integrated, virtual, cpu, other

        /// Higher is preferred by default device selection.
        var preference: Int {
            switch self {
            case .discrete: 4
            case .integrated: 3
            case .virtual: 2
            case .cpu: 1
            case .other: 0
            }
        }
    }

    public struct MemoryHeap: Codable, Sendable {
        public let bytes: UInt64
        public let deviceLocal: Bool
    }

    public let index: Int
    public let name: String
    public let type: Kind
    public let vendorID: UInt32
    public let deviceID: UInt32
    public let uuid: String
    public let driverName: String
    public let driverInfo: String
    public let apiVersion: String
    public let memoryHeaps: [MemoryHeap]
    public let maxStorageBufferRange: UInt64
    public let maxMemoryAllocationSize: UInt64
    public let maxComputeSharedMemorySize: UInt32
    public let maxComputeWorkGroupInvocations: UInt32
    public let maxComputeWorkGroupCount: [UInt32]
    public let maxPushConstantsSize: UInt32
    public let subgroupSize: UInt32
    /// Compute shaders can use subgroup basic, ballot (broadcast) and arithmetic operations.
    public let subgroupBroadcastAndArithmetic: Bool
    public let shaderFloat16: Bool
    public let storageBuffer16BitAccess: Bool
    public let bufferDeviceAddress: Bool
    public let shaderInt64: Bool
    public let timestampPeriodNanoseconds: Float
    public let timestampsSupported: Bool
    public let cooperativeMatrix: Bool
    /// Why Kiln cannot run on this device, or nil if it can.
    public let unsupportedReason: String?

    init(_ device: VkPhysicalDevice, index: Int) {
        var properties = VkPhysicalDeviceProperties()
        vkGetPhysicalDeviceProperties(device, &properties)
        let version = properties.apiVersion
        let supports12 = version >= vkMakeApiVersion(1, 2)

        var vulkan11 = VkPhysicalDeviceVulkan11Properties()
        vulkan11.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_PROPERTIES
        var vulkan12 = VkPhysicalDeviceVulkan12Properties()
        vulkan12.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_PROPERTIES
        var features11 = VkPhysicalDeviceVulkan11Features()
        features11.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES
        var features12 = VkPhysicalDeviceVulkan12Features()
        features12.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES
        var features = VkPhysicalDeviceFeatures2()
        features.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2
        if supports12 {
            var chained = VkPhysicalDeviceProperties2()
            chained.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2
            withUnsafeMutablePointer(to: &vulkan12) { p12 in
                vulkan11.pNext = UnsafeMutableRawPointer(p12)
                withUnsafeMutablePointer(to: &vulkan11) { p11 in
                    chained.pNext = UnsafeMutableRawPointer(p11)
                    vkGetPhysicalDeviceProperties2(device, &chained)
                }
            }
            withUnsafeMutablePointer(to: &features12) { p12 in
                features11.pNext = UnsafeMutableRawPointer(p12)
                withUnsafeMutablePointer(to: &features11) { p11 in
                    features.pNext = UnsafeMutableRawPointer(p11)
                    vkGetPhysicalDeviceFeatures2(device, &features)
                }
            }
            vulkan11.pNext = nil
            features11.pNext = nil
            features.pNext = nil
        } else {
            vkGetPhysicalDeviceFeatures(device, &features.features)
        }

        var memory = VkPhysicalDeviceMemoryProperties()
        vkGetPhysicalDeviceMemoryProperties(device, &memory)
        let heaps = withUnsafeBytes(of: memory.memoryHeaps) { raw in
            Array(raw.bindMemory(to: VkMemoryHeap.self).prefix(Int(memory.memoryHeapCount)))
        }
        let limits = properties.limits

        self.index = index
        name = string(fromCharacters: properties.deviceName)
        type = switch properties.deviceType {
        case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: .discrete
        case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: .integrated
        case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: .virtual
        case VK_PHYSICAL_DEVICE_TYPE_CPU: .cpu
        default: .other
        }
        vendorID = properties.vendorID
        deviceID = properties.deviceID
        uuid = Self.formatUUID(properties.pipelineCacheUUID, fallback: vulkan11.deviceUUID, supports12: supports12)
        driverName = supports12 ? string(fromCharacters: vulkan12.driverName) : ""
        driverInfo = supports12 ? string(fromCharacters: vulkan12.driverInfo) : ""
        apiVersion = "\(version >> 22).\((version >> 12) & 0x3FF).\(version & 0xFFF)"
        memoryHeaps = heaps.map {
            MemoryHeap(bytes: $0.size, deviceLocal: $0.flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT.rawValue != 0)
        }
        maxStorageBufferRange = UInt64(limits.maxStorageBufferRange)
        maxMemoryAllocationSize = supports12 ? vulkan11.maxMemoryAllocationSize : UInt64(limits.maxStorageBufferRange)
        maxComputeSharedMemorySize = limits.maxComputeSharedMemorySize
        maxComputeWorkGroupInvocations = limits.maxComputeWorkGroupInvocations
        maxComputeWorkGroupCount = [limits.maxComputeWorkGroupCount.0, limits.maxComputeWorkGroupCount.1, limits.maxComputeWorkGroupCount.2]
        maxPushConstantsSize = limits.maxPushConstantsSize
        subgroupSize = supports12 ? vulkan11.subgroupSize : 1
        let neededOperations = VK_SUBGROUP_FEATURE_BASIC_BIT.rawValue | VK_SUBGROUP_FEATURE_BALLOT_BIT.rawValue
            | VK_SUBGROUP_FEATURE_ARITHMETIC_BIT.rawValue
        subgroupBroadcastAndArithmetic = supports12
            && vulkan11.subgroupSupportedOperations & neededOperations == neededOperations
            && vulkan11.subgroupSupportedStages & VK_SHADER_STAGE_COMPUTE_BIT.rawValue != 0
        shaderFloat16 = supports12 && features12.shaderFloat16 != 0
        storageBuffer16BitAccess = supports12 && features11.storageBuffer16BitAccess != 0
        bufferDeviceAddress = supports12 && features12.bufferDeviceAddress != 0
        shaderInt64 = features.features.shaderInt64 != 0
        timestampPeriodNanoseconds = limits.timestampPeriod
        timestampsSupported = limits.timestampComputeAndGraphics != 0
        cooperativeMatrix = Self.extensions(of: device).contains("VK_KHR_cooperative_matrix")

        if !supports12 {
            unsupportedReason = "Vulkan \(apiVersion) < 1.2"
        } else if !bufferDeviceAddress {
            unsupportedReason = "no bufferDeviceAddress feature"
        } else if limits.maxPushConstantsSize < 128 {
            unsupportedReason = "maxPushConstantsSize \(limits.maxPushConstantsSize) < 128"
        } else {
            unsupportedReason = nil
        }
    }

    /// f16 storage works only with 16-bit storage access and f16 shader types.
    public var supportsFloat16Storage: Bool { storageBuffer16BitAccess && shaderFloat16 }

    private static func formatUUID<T>(_ pipelineUUID: T, fallback deviceUUID: T, supports12: Bool) -> String {
        let bytes = withUnsafeBytes(of: supports12 ? deviceUUID : pipelineUUID) { Array($0) }
        let hex = bytes.map { String(format2: $0) }
        return [0..<4, 4..<6, 6..<8, 8..<10, 10..<16].map { hex[$0].joined() }.joined(separator: "-")
    }

    private static func extensions(of device: VkPhysicalDevice) -> Set<String> {
        var count: UInt32 = 0
        guard vkEnumerateDeviceExtensionProperties(device, nil, &count, nil) == VK_SUCCESS else { return [] }
        var properties = [VkExtensionProperties](repeating: VkExtensionProperties(), count: Int(count))
        guard vkEnumerateDeviceExtensionProperties(device, nil, &count, &properties) == VK_SUCCESS else { return [] }
        return Set(properties.prefix(Int(count)).map { string(fromCharacters: $0.extensionName) })
    }
}

extension String {
    /// Two lowercase hex digits.
    init(format2 byte: UInt8) {
        let digits = Array("0123456789abcdef")
        self.init([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
    }
}

/// Chooses a device from `--device` / KILN_DEVICE: an index, a UUID, or a case-insensitive
/// substring of the name; by default the most capable kind (discrete > integrated > virtual > CPU).
public enum DeviceSelection {
    public static func choose(from devices: [PhysicalDevice], selector: String?) throws -> PhysicalDevice {
        let usable = devices.filter { $0.info.unsupportedReason == nil }
        let listing = devices.map { "\($0.index): \($0.info.name)\($0.info.unsupportedReason.map { " (unsupported: \($0))" } ?? "")" }
            .joined(separator: "; ")
        guard let selector, !selector.isEmpty else {
            guard let best = usable.max(by: { ($0.info.type.preference, -$0.index) < ($1.info.type.preference, -$1.index) }) else {
                throw VulkanError.noDevice("no usable Vulkan device (found: \(listing.isEmpty ? "none" : listing))")
            }
            return best
        }
        let matches: [PhysicalDevice]
        if let index = Int(selector) {
            matches = devices.filter { $0.index == index }
        } else if selector.count >= 32, selector.allSatisfy({ $0.isHexDigit || $0 == "-" }) {
            let wanted = selector.lowercased().filter { $0 != "-" }
            matches = devices.filter { $0.info.uuid.filter { $0 != "-" } == wanted }
        } else {
            matches = devices.filter { $0.info.name.lowercased().contains(selector.lowercased()) }
        }
        guard let chosen = matches.first else {
            throw VulkanError.noDevice("no Vulkan device matches '\(selector)' (found: \(listing.isEmpty ? "none" : listing))")
        }
        if let reason = chosen.info.unsupportedReason {
            throw VulkanError.unsupported("device \(chosen.index) '\(chosen.info.name)': \(reason)")
        }
        return chosen
    }
}
