import CVulkan
import Foundation

/// A logical device with one compute queue, the features Kiln uses, a command pool, a memory
/// allocator and the pipeline store. Thread-safe: submissions are serialised by a lock.
public final class VulkanDevice: @unchecked Sendable {
    public let instance: VulkanInstance
    public let physical: PhysicalDevice
    public let handle: VkDevice
    public let queue: VkQueue
    public let queueFamily: UInt32
    /// Whether f16 tensors can be used (16-bit storage and f16 types enabled).
    public let float16Storage: Bool
    /// Pool for one-off uploads; command pools are externally synchronised, so `runOnce` holds
    /// `poolLock` and every prepared graph records into a pool of its own.
    private let commandPool: VkCommandPool
    private let poolLock = NSLock()
    private let submitLock = NSLock()
    private let countLock = NSLock()
    private var constantUploadBytes = 0
    public let allocator: MemoryAllocator
    public let pipelines: PipelineStore
    let health = DeviceHealth()

    public var info: DeviceInfo { physical.info }

    /// Bytes of graph constants uploaded to this device so far (see `Backend.uploadedConstantBytes`).
    public var uploadedConstantBytes: Int { countLock.withLock { constantUploadBytes } }

    /// Seconds spent in the zero-sized first dispatches of new pipelines (the driver's deferred
    /// compile, on lavapipe) in this process.
    public var pipelineFirstDispatchSeconds: Double { countLock.withLock { firstDispatchSeconds } }
    private var firstDispatchSeconds: Double = 0

    func countConstantUpload(_ bytes: Int) { countLock.withLock { constantUploadBytes += bytes } }

    /// Opens the device chosen by `selector` (index, UUID or name substring), or by KILN_DEVICE,
    /// or the default preference order.
    public static func open(selector: String? = nil) throws -> VulkanDevice {
        let instance = try VulkanInstance.shared()
        let chosen = try DeviceSelection.choose(
            from: instance.physicalDevices(), selector: selector ?? ProcessInfo.processInfo.environment["KILN_DEVICE"])
        return try VulkanDevice(instance: instance, physical: chosen)
    }

    init(instance: VulkanInstance, physical: PhysicalDevice) throws {
        if let error = FaultInjector.environment.environmentError { throw error }
        self.instance = instance
        self.physical = physical
        let info = physical.info

        var familyCount: UInt32 = 0
        vkGetPhysicalDeviceQueueFamilyProperties(physical.handle, &familyCount, nil)
        var families = [VkQueueFamilyProperties](repeating: VkQueueFamilyProperties(), count: Int(familyCount))
        vkGetPhysicalDeviceQueueFamilyProperties(physical.handle, &familyCount, &families)
        // Prefer a compute-only family (async compute on discrete GPUs), else any with compute.
        let computeBit = VK_QUEUE_COMPUTE_BIT.rawValue, graphicsBit = VK_QUEUE_GRAPHICS_BIT.rawValue
        let candidates = families.enumerated().filter { $0.element.queueFlags & computeBit != 0 && $0.element.timestampValidBits > 0 }
        guard let family = candidates.first(where: { $0.element.queueFlags & graphicsBit == 0 }) ?? candidates.first
            ?? families.enumerated().first(where: { $0.element.queueFlags & computeBit != 0 })
        else { throw VulkanError.unsupported("device '\(info.name)' has no compute queue") }
        queueFamily = UInt32(family.offset)

        float16Storage = info.supportsFloat16Storage
        var features12 = VkPhysicalDeviceVulkan12Features()
        features12.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES
        features12.bufferDeviceAddress = VkBool32(VK_TRUE)
        features12.shaderFloat16 = VkBool32(float16Storage ? VK_TRUE : VK_FALSE)
        var features11 = VkPhysicalDeviceVulkan11Features()
        features11.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES
        features11.storageBuffer16BitAccess = VkBool32(float16Storage ? VK_TRUE : VK_FALSE)
        var features = VkPhysicalDeviceFeatures2()
        features.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2
        features.features.shaderInt64 = VkBool32(info.shaderInt64 ? VK_TRUE : VK_FALSE)

        var priority: Float = 1
        var queueInfo = VkDeviceQueueCreateInfo()
        queueInfo.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO
        queueInfo.queueFamilyIndex = queueFamily
        queueInfo.queueCount = 1
        var created: VkDevice?
        try withUnsafePointer(to: &priority) { priorityPointer in
            queueInfo.pQueuePriorities = priorityPointer
            try withUnsafeMutablePointer(to: &features12) { p12 in
                features11.pNext = UnsafeMutableRawPointer(p12)
                try withUnsafeMutablePointer(to: &features11) { p11 in
                    features.pNext = UnsafeMutableRawPointer(p11)
                    try withUnsafePointer(to: &features) { featuresPointer in
                        try withUnsafePointer(to: &queueInfo) { queuePointer in
                            var deviceInfo = VkDeviceCreateInfo()
                            deviceInfo.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO
                            deviceInfo.pNext = UnsafeRawPointer(featuresPointer)
                            deviceInfo.queueCreateInfoCount = 1
                            deviceInfo.pQueueCreateInfos = queuePointer
                            try check(vkCreateDevice(physical.handle, &deviceInfo, nil, &created), "vkCreateDevice")
                        }
                    }
                }
            }
        }
        guard let created else { throw VulkanError.call("vkCreateDevice", VK_ERROR_INITIALIZATION_FAILED.rawValue) }
        handle = created

        var queue: VkQueue?
        vkGetDeviceQueue(created, queueFamily, 0, &queue)
        guard let queue else { throw VulkanError.unsupported("vkGetDeviceQueue returned no queue") }
        self.queue = queue

        commandPool = try Self.makeCommandPool(device: created, family: queueFamily)
        allocator = MemoryAllocator(handle: created, physical: physical, health: health)
        pipelines = PipelineStore(handle: created, info: info)
    }

    deinit {
        vkDeviceWaitIdle(handle)
        pipelines.release()
        allocator.release()
        vkDestroyCommandPool(handle, commandPool, nil)
        vkDestroyDevice(handle, nil)
    }

    static func makeCommandPool(device: VkDevice, family: UInt32) throws -> VkCommandPool {
        var info = VkCommandPoolCreateInfo()
        info.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO
        info.queueFamilyIndex = family
        var pool: VkCommandPool?
        try check(vkCreateCommandPool(device, &info, nil, &pool), "vkCreateCommandPool")
        guard let pool else { throw VulkanError.call("vkCreateCommandPool", VK_ERROR_INITIALIZATION_FAILED.rawValue) }
        return pool
    }

    /// A command pool owned by the caller (one per recording thread or prepared graph).
    func makeCommandPool() throws -> VkCommandPool { try Self.makeCommandPool(device: handle, family: queueFamily) }

    /// Allocates a primary command buffer from `pool`.
    func makeCommandBuffer(in pool: VkCommandPool) throws -> VkCommandBuffer {
        var info = VkCommandBufferAllocateInfo()
        info.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO
        info.commandPool = pool
        info.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY
        info.commandBufferCount = 1
        var buffer: VkCommandBuffer?
        try check(vkAllocateCommandBuffers(handle, &info, &buffer), "vkAllocateCommandBuffers")
        guard let buffer else { throw VulkanError.call("vkAllocateCommandBuffers", VK_ERROR_OUT_OF_HOST_MEMORY.rawValue) }
        return buffer
    }

    /// Submits `commandBuffer` and blocks until the device has finished it. A lost device fails
    /// every submission from then on, as drivers do.
    func submitAndWait(_ commandBuffer: VkCommandBuffer) throws {
        if let call = health.lostCall { throw VulkanError.call("vkQueueSubmit (the device was lost by \(call))", VK_ERROR_DEVICE_LOST.rawValue) }
        var fenceInfo = VkFenceCreateInfo()
        fenceInfo.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO
        var fence: VkFence?
        try check(vkCreateFence(handle, &fenceInfo, nil, &fence), "vkCreateFence")
        defer { vkDestroyFence(handle, fence, nil) }
        var buffer: VkCommandBuffer? = commandBuffer
        try withUnsafePointer(to: &buffer) { bufferPointer in
            var submit = VkSubmitInfo()
            submit.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO
            submit.commandBufferCount = 1
            submit.pCommandBuffers = bufferPointer
            try submitLock.withLock {
                try checkDevice(vkQueueSubmit(queue, 1, &submit, fence), "vkQueueSubmit")
            }
        }
        try checkDevice(vkWaitForFences(handle, 1, &fence, VkBool32(VK_TRUE), UInt64.max), "vkWaitForFences")
    }

    /// `check`, remembering a lost device.
    private func checkDevice(_ result: VkResult, _ call: String) throws {
        if result == VK_ERROR_DEVICE_LOST { health.markLost(by: call) }
        try check(result, call)
    }

    /// The pipelines for `keys`, in their order, building missing ones on several threads; then
    /// every new one is dispatched once with zero workgroups, so a driver that compiles a shader at
    /// its first dispatch (lavapipe's LLVM) does it now, while the graph is prepared, not inside
    /// its first run. A zero-sized dispatch runs no invocation and touches no memory.
    public func pipelines(for keys: [PipelineKey]) throws -> [VkPipeline] {
        let (all, created) = try pipelines.pipelines(for: keys)
        try completeCompilation(created)
        return all
    }

    /// One submission binding and dispatching each of `created` with zero workgroups and zeroed push
    /// constants (one submission each, timed, with `KILN_LOG_PIPELINES=1`).
    private func completeCompilation(_ created: [(key: PipelineKey, pipeline: VkPipeline)]) throws {
        guard !created.isEmpty else { return }
        // Every kernel reads push constants, which must be set before a dispatch even of nothing;
        // one shared layout keeps them across the binds.
        let layout = try pipelines.layout()
        let zeros = [UInt8](repeating: 0, count: PipelineStore.pushConstantBytes)
        let start = Date()
        let batches = PipelineLog.enabled ? created.map { [$0] } : [created]
        for batch in batches {
            let batchStart = Date()
            try runOnce { commands in
                zeros.withUnsafeBytes { raw in
                    vkCmdPushConstants(commands, layout, VK_SHADER_STAGE_COMPUTE_BIT.rawValue, 0, UInt32(raw.count), raw.baseAddress)
                }
                for entry in batch {
                    vkCmdBindPipeline(commands, VK_PIPELINE_BIND_POINT_COMPUTE, entry.pipeline)
                    vkCmdDispatch(commands, 0, 0, 0)
                }
            }
            if PipelineLog.enabled, let entry = batch.first {
                PipelineLog.write(String(format: "pipeline %@: first dispatch %.3f s", entry.key.description, Date().timeIntervalSince(batchStart)))
            }
        }
        countLock.withLock { firstDispatchSeconds += Date().timeIntervalSince(start) }
    }

    /// Records `body` into a one-time command buffer, submits it and waits.
    func runOnce(_ body: (VkCommandBuffer) throws -> Void) throws {
        poolLock.lock()
        defer { poolLock.unlock() }
        let buffer = try makeCommandBuffer(in: commandPool)
        defer {
            var optional: VkCommandBuffer? = buffer
            vkFreeCommandBuffers(handle, commandPool, 1, &optional)
        }
        var begin = VkCommandBufferBeginInfo()
        begin.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO
        begin.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT.rawValue
        try check(vkBeginCommandBuffer(buffer, &begin), "vkBeginCommandBuffer")
        try body(buffer)
        try check(vkEndCommandBuffer(buffer), "vkEndCommandBuffer")
        try submitAndWait(buffer)
    }
}
