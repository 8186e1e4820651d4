import CVulkan
import Foundation
import KilnGraph

/// A graph compiled for one device: memory planned, constants resident, command buffer recorded.
public final class VulkanPreparedGraph: PreparedGraph, @unchecked Sendable {
    /// One node's kernels and the arena bytes they read and write (for barrier placement).
    struct Step {
        let node: Node
        let dispatches: [Dispatch]
        let pipelines: [VkPipeline]
        let reads: [Range<Int>]
        let writes: [Range<Int>]
        let flops: Double
    }

    public let memoryPlan: MemoryPlan
    public let device: VulkanDevice
    /// Per-op GPU times of the last run, when prepared with profiling.
    public private(set) var lastProfile: [OperationTiming] = []
    /// Seconds spent preparing: pipeline creation, weight upload, recording.
    public private(set) var preparationSeconds: Double = 0

    private let graph: Graph
    private let outputs: [Tensor]
    private let inputNodes: [Node]
    private let arena: DeviceAllocation?
    /// Every constant's region, by node id: its own, or a resident copy shared with other graphs.
    private let constantAllocations: [Int: DeviceAllocation]
    /// The regions this graph owns and releases; resident ones belong to their stores.
    private let ownedConstants: [DeviceAllocation]
    /// Stores of resident weights this graph reads from, kept alive with it.
    private let residentStores: [ResidentConstantStore]
    private let uploadStaging: DeviceAllocation?
    private let readbackStaging: DeviceAllocation?
    private let uploadOffsets: [Int: Int]
    private let readbackOffsets: [Int]
    private let steps: [Step]
    private let commandPool: VkCommandPool
    private let commandBuffer: VkCommandBuffer
    private let queryPool: VkQueryPool?
    private let lock = NSLock()

    init(device: VulkanDevice, graph: Graph, outputs: [Tensor], constants: any ConstantValues, variant: KernelVariant, profile: Bool) throws {
        let start = Date()
        self.device = device
        self.graph = graph
        self.outputs = outputs
        let order = graph.dependencies(of: outputs)
        try validateBindings(graph, nodes: order, supplied: constants, constants: true)
        for id in order {
            let node = graph.nodes[id]
            if node.dtype == .bfloat16 {
                throw GraphError(node.operation.name, "bf16 storage is not supported by the Vulkan backend yet (node %\(id) \(node.shape)); use f16 or f32")
            }
            if node.dtype == .float16 && !device.float16Storage {
                throw VulkanError.unsupported("'\(device.info.name)' lacks 16-bit storage / shaderFloat16, needed by f16 node %\(id)")
            }
        }
        inputNodes = order.map { graph.nodes[$0] }.filter { if case .input = $0.operation { true } else { false } }

        let plan = MemoryPlan(activationsOf: graph, outputs: outputs)
        memoryPlan = plan

        // Constants: resident ones another graph already uploaded are reused; the rest get a
        // region each, uploaded below through a temporary staging area.
        var constantAllocations: [Int: DeviceAllocation] = [:]
        var newConstants: [(node: Node, name: String, resident: (store: ResidentConstantStore, key: String)?)] = []
        var stores: [ObjectIdentifier: ResidentConstantStore] = [:]
        for id in order {
            let node = graph.nodes[id]
            guard case .constant(let name) = node.operation else { continue }
            guard let residency = constants.residency(ofConstant: name) else {
                newConstants.append((node, name, nil))
                continue
            }
            let store = residency.store(for: device) { ResidentConstantStore(device: device) }
            stores[ObjectIdentifier(store)] = store
            let key = residentKey(name, node.shape, node.dtype)
            if let existing = store.allocation(key) {
                constantAllocations[id] = existing
            } else {
                newConstants.append((node, name, (store, key)))
            }
        }
        residentStores = Array(stores.values)
        try Self.checkFits(plan: plan, constants: newConstants.map(\.node), device: device.info)
        let allocator = AllocationScope(device.allocator)
        let arenaAllocation = plan.arenaBytes > 0 ? try allocator.allocate(bytes: plan.arenaBytes, kind: .deviceLocal) : nil
        arena = arenaAllocation
        var uploads: [Upload] = []
        for constant in newConstants {
            let allocation = try allocator.allocate(bytes: constant.node.shape.elementCount * constant.node.dtype.byteCount, kind: .deviceLocal)
            constantAllocations[constant.node.id] = allocation
            uploads.append(Upload(name: constant.name, target: allocation, dtype: constant.node.dtype))
        }
        self.constantAllocations = constantAllocations

        // Staging areas for per-run inputs and outputs.
        var uploadOffsets: [Int: Int] = [:]
        var uploadBytes = 0
        for node in inputNodes {
            uploadOffsets[node.id] = uploadBytes
            uploadBytes += Self.aligned(node.shape.elementCount * node.dtype.byteCount)
        }
        var readbackOffsets: [Int] = []
        var readbackBytes = 0
        for output in outputs {
            readbackOffsets.append(readbackBytes)
            readbackBytes += Self.aligned(output.shape.elementCount * output.dtype.byteCount)
        }
        self.uploadOffsets = uploadOffsets
        self.readbackOffsets = readbackOffsets
        uploadStaging = uploadBytes > 0 ? try allocator.allocate(bytes: uploadBytes, kind: .staging) : nil
        readbackStaging = readbackBytes > 0 ? try allocator.allocate(bytes: readbackBytes, kind: .staging) : nil

        // Kernels for every node, with the arena ranges each reads and writes; then every distinct
        // pipeline they need, built together (several threads, the driver's compile included).
        var contexts: [KernelContext] = []
        for id in order {
            let node = graph.nodes[id]
            let inputs = node.inputs.map { graph.nodes[$0] }
            var context = KernelContext(
                node: node,
                inputs: inputs.map { TensorArgument(address: Self.address(of: $0.id, plan: plan, arena: arenaAllocation, constants: constantAllocations), shape: $0.shape, dtype: $0.dtype) },
                output: TensorArgument(address: Self.address(of: id, plan: plan, arena: arenaAllocation, constants: constantAllocations), shape: node.shape, dtype: node.dtype),
                device: device.info)
            context.variant = variant
            contexts.append(context)
        }
        var chosen = try contexts.map { (node: $0.node, dispatches: try KernelTable.dispatches($0)) }
        // Tuned tiles whose work in this graph is too small to pay for their compile time give way
        // to compact ones.
        for index in CompactTiles.nodesPreferringCompactTiles(chosen.map(\.dispatches), contexts: contexts, graph: graph) {
            contexts[index].compactTilesChosen = true
            chosen[index].dispatches = try KernelTable.dispatches(contexts[index])
        }
        chosen = chosen.filter { !$0.dispatches.isEmpty }
        for (node, dispatches) in chosen { try Self.checkLimits(dispatches, node: node, device: device.info) }
        var pipelines = try device.pipelines(for: chosen.flatMap { $0.dispatches.map(\.key) })[...]
        var built: [Step] = []
        for (node, dispatches) in chosen {
            built.append(Step(
                node: node, dispatches: dispatches, pipelines: Array(pipelines.prefix(dispatches.count)),
                reads: node.inputs.compactMap { Self.arenaRange(of: $0, plan: plan) },
                writes: Self.arenaRange(of: node.id, plan: plan).map { [$0] } ?? [],
                flops: graph.flops(of: node.id)))
            pipelines = pipelines.dropFirst(dispatches.count)
        }
        steps = built
        device.pipelines.save()
        // Weights go up only once every kernel is known to fit the device's limits; resident
        // ones are filed for other graphs only once they hold their values.
        try Self.upload(uploads, from: constants, device: device)
        var owned: [DeviceAllocation] = []
        for constant in newConstants {
            guard let allocation = constantAllocations[constant.node.id] else { continue }
            if let (store, key) = constant.resident, store.file(allocation, under: key, name: constant.name, dtype: constant.node.dtype) { continue }
            owned.append(allocation)
        }
        ownedConstants = owned

        if profile && device.info.timestampsSupported {
            var info = VkQueryPoolCreateInfo()
            info.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO
            info.queryType = VK_QUERY_TYPE_TIMESTAMP
            info.queryCount = UInt32(built.count + 1)
            var pool: VkQueryPool?
            try check(vkCreateQueryPool(device.handle, &info, nil, &pool), "vkCreateQueryPool")
            queryPool = pool
        } else {
            queryPool = nil
        }
        commandPool = try device.makeCommandPool()
        commandBuffer = try device.makeCommandBuffer(in: commandPool)
        allocator.keep()
        try record()
        preparationSeconds = Date().timeIntervalSince(start)
    }

    deinit {
        vkDestroyCommandPool(device.handle, commandPool, nil)
        if let queryPool { vkDestroyQueryPool(device.handle, queryPool, nil) }
        let allocator = device.allocator
        for allocation in [arena, uploadStaging, readbackStaging].compactMap({ $0 }) + ownedConstants {
            allocator.release(allocation)
        }
    }

    /// Total bytes of device memory this graph uses: arena, constants (resident ones shared with
    /// other graphs included) and staging.
    public var deviceBytes: Int {
        ([arena, uploadStaging, readbackStaging].compactMap { $0 } + Array(constantAllocations.values)).reduce(0) { $0 + $1.bytes }
    }

    /// Floating-point operations of one run.
    public var flops: Double { steps.reduce(0) { $0 + $1.flops } }

    // MARK: Running

    public func run(_ inputs: [String: HostTensor]) throws -> [HostTensor] {
        try validateBindings(graph, nodes: inputNodes.map(\.id), supplied: inputs, constants: false)
        try checkEmbeddingIDs(inputs)
        return try lock.withLock {
            for node in inputNodes {
                guard case .input(let name) = node.operation, let value = inputs[name], let staging = uploadStaging?.mapped,
                      let offset = uploadOffsets[node.id] else { continue }
                HostConversion.write(value, as: node.dtype, to: staging + offset)
            }
            try device.health.check(.run, call: "vkQueueSubmit")
            try device.submitAndWait(commandBuffer)
            if let queryPool { lastProfile = try readTimestamps(queryPool) }
            return outputs.enumerated().map { index, output in
                guard let staging = readbackStaging?.mapped else { return HostTensor.zeros(output.shape) }
                return HostConversion.read(shape: output.shape, dtype: output.dtype, from: staging + readbackOffsets[index])
            }
        }
    }

    /// The GPU cannot report a bad id, so ids that come straight from inputs are checked here,
    /// with the same message as the CPU reference.
    private func checkEmbeddingIDs(_ inputs: [String: HostTensor]) throws {
        for step in steps {
            guard case .embedding = step.node.operation, step.node.inputs.count == 2 else { continue }
            let table = graph.nodes[step.node.inputs[0]], ids = graph.nodes[step.node.inputs[1]]
            guard case .input(let name) = ids.operation, let value = inputs[name] else { continue }
            if let bad = value.integers.first(where: { $0 < 0 || Int($0) >= table.shape[0] }) {
                throw GraphError("embedding", "id \(bad) out of range for table \(table.shape) (input '\(name)')")
            }
        }
    }

    // MARK: Recording

    private func record() throws {
        var begin = VkCommandBufferBeginInfo()
        begin.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO
        try check(vkBeginCommandBuffer(commandBuffer, &begin), "vkBeginCommandBuffer")
        if let queryPool { vkCmdResetQueryPool(commandBuffer, queryPool, 0, UInt32(steps.count + 1)) }

        if let uploadStaging, let arena {
            for node in inputNodes {
                guard let root = memoryPlan.storage[node.id], let offset = memoryPlan.offsets[root], let source = uploadOffsets[node.id] else { continue }
                var region = VkBufferCopy(srcOffset: VkDeviceSize(uploadStaging.offset + source),
                                          dstOffset: VkDeviceSize(arena.offset + offset),
                                          size: VkDeviceSize(node.shape.elementCount * node.dtype.byteCount))
                vkCmdCopyBuffer(commandBuffer, uploadStaging.buffer, arena.buffer, 1, &region)
            }
        }
        barrier(from: VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT,
                to: VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VkAccessFlagBits(VK_ACCESS_SHADER_READ_BIT.rawValue | VK_ACCESS_SHADER_WRITE_BIT.rawValue))
        if let queryPool { vkCmdWriteTimestamp(commandBuffer, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, queryPool, 0) }

        // A barrier goes in only where a step reads what an earlier unsynchronised step wrote, or
        // writes what one read or wrote (the planner reuses arena bytes).
        var written: [Range<Int>] = [], read: [Range<Int>] = []
        // Every earlier kernel's writes become visible; nothing is pending any more.
        func synchronise() {
            barrier(from: VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_WRITE_BIT,
                    to: VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VkAccessFlagBits(VK_ACCESS_SHADER_READ_BIT.rawValue | VK_ACCESS_SHADER_WRITE_BIT.rawValue))
            written.removeAll()
            read.removeAll()
        }
        let layout = try device.pipelines.layout()
        var bound: VkPipeline?
        for (index, step) in steps.enumerated() {
            let hazard = step.reads.contains { r in written.contains { $0.overlaps(r) } }
                || step.writes.contains { w in (written + read).contains { $0.overlaps(w) } }
            if hazard {
                synchronise()
            }
            for (dispatch, pipeline) in zip(step.dispatches, step.pipelines) {
                if bound != pipeline {
                    vkCmdBindPipeline(commandBuffer, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline)
                    bound = pipeline
                }
                dispatch.pushConstants.bytes.withUnsafeBytes { raw in
                    vkCmdPushConstants(commandBuffer, layout, VK_SHADER_STAGE_COMPUTE_BIT.rawValue, 0, UInt32(raw.count), raw.baseAddress)
                }
                vkCmdDispatch(commandBuffer, dispatch.groups.x, dispatch.groups.y, dispatch.groups.z)
            }
            written += step.writes
            read += step.reads
            if let queryPool {
                // Profiling serialises the ops so each timestamp brackets exactly one of them.
                synchronise()
                vkCmdWriteTimestamp(commandBuffer, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, queryPool, UInt32(index + 1))
            }
        }

        barrier(from: VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_WRITE_BIT,
                to: VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_READ_BIT)
        if let readbackStaging {
            for (index, output) in outputs.enumerated() {
                let (buffer, offset) = location(of: output.id)
                var region = VkBufferCopy(srcOffset: VkDeviceSize(offset), dstOffset: VkDeviceSize(readbackStaging.offset + readbackOffsets[index]),
                                          size: VkDeviceSize(output.shape.elementCount * output.dtype.byteCount))
                vkCmdCopyBuffer(commandBuffer, buffer, readbackStaging.buffer, 1, &region)
            }
        }
        barrier(from: VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT, to: VK_PIPELINE_STAGE_HOST_BIT, VK_ACCESS_HOST_READ_BIT)
        try check(vkEndCommandBuffer(commandBuffer), "vkEndCommandBuffer")
    }

    private func barrier(from source: VkPipelineStageFlagBits, _ sourceAccess: VkAccessFlagBits,
                         to destination: VkPipelineStageFlagBits, _ destinationAccess: VkAccessFlagBits) {
        var memoryBarrier = VkMemoryBarrier()
        memoryBarrier.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER
        memoryBarrier.srcAccessMask = sourceAccess.rawValue
        memoryBarrier.dstAccessMask = destinationAccess.rawValue
        vkCmdPipelineBarrier(commandBuffer, source.rawValue, destination.rawValue, 0, 1, &memoryBarrier, 0, nil, 0, nil)
    }

    private func readTimestamps(_ pool: VkQueryPool) throws -> [OperationTiming] {
        var stamps = [UInt64](repeating: 0, count: steps.count + 1)
        try check(vkGetQueryPoolResults(device.handle, pool, 0, UInt32(stamps.count), stamps.count * 8, &stamps, 8,
                                        VK_QUERY_RESULT_64_BIT.rawValue | VK_QUERY_RESULT_WAIT_BIT.rawValue), "vkGetQueryPoolResults")
        let period = Double(device.info.timestampPeriodNanoseconds) * 1e-9
        return steps.enumerated().map { index, step in
            OperationTiming(nodeID: step.node.id, operation: step.node.operation.name,
                            seconds: Double(stamps[index + 1] &- stamps[index]) * period, flops: step.flops)
        }
    }

    // MARK: Addresses

    private func location(of id: Int) -> (VkBuffer, Int) {
        let root = memoryPlan.storage[id] ?? id
        if let constant = constantAllocations[root] { return (constant.buffer, constant.offset) }
        guard let arena, let offset = memoryPlan.offsets[root] else { preconditionFailure("node %\(id) has no storage") }
        return (arena.buffer, arena.offset + offset)
    }

    private static func address(of id: Int, plan: MemoryPlan, arena: DeviceAllocation?, constants: [Int: DeviceAllocation]) -> UInt64 {
        let root = plan.storage[id] ?? id
        if let constant = constants[root] { return constant.address }
        guard let arena, let offset = plan.offsets[root] else { return 0 }
        return arena.address + UInt64(offset)
    }

    private static func arenaRange(of id: Int, plan: MemoryPlan) -> Range<Int>? {
        guard let root = plan.storage[id], let offset = plan.offsets[root], let size = plan.sizes[root] else { return nil }
        return offset..<(offset + size)
    }

    private static func aligned(_ bytes: Int) -> Int { (bytes + 255) / 256 * 256 }

    /// Fails before anything is allocated when the activations cannot live in one allocation or
    /// activations plus weights exceed the device's largest memory heap.
    private static func checkFits(plan: MemoryPlan, constants: [Node], device: DeviceInfo) throws {
        if UInt64(plan.arenaBytes) > device.maxMemoryAllocationSize {
            throw MemoryLimitError(
                needed: plan.arenaBytes, available: Int(clamping: device.maxMemoryAllocationSize),
                limit: "largest allocation (maxMemoryAllocationSize) of '\(device.name)'", need: "the graph's activations at their peak")
        }
        let weightBytes = constants.reduce(0) { $0 + $1.shape.elementCount * $1.dtype.byteCount }
        let heap = device.memoryHeaps.filter(\.deviceLocal).map(\.bytes).max() ?? 0
        if heap > 0, UInt64(plan.arenaBytes + weightBytes) > heap {
            throw MemoryLimitError(
                needed: plan.arenaBytes + weightBytes, available: Int(clamping: heap), limit: "device-local heap of '\(device.name)'",
                need: "the graph's activations (\(plan.arenaBytes) bytes) and weights (\(weightBytes) bytes)")
        }
    }

    private static func checkLimits(_ dispatches: [Dispatch], node: Node, device: DeviceInfo) throws {
        for dispatch in dispatches {
            let counts = [dispatch.groups.x, dispatch.groups.y, dispatch.groups.z]
            for axis in 0..<3 where counts[axis] > device.maxComputeWorkGroupCount[axis] {
                throw VulkanError.limitExceeded("\(node.operation.name) %\(node.id) \(node.shape) needs \(counts[axis]) workgroups on axis \(axis) > maxComputeWorkGroupCount \(device.maxComputeWorkGroupCount[axis])")
            }
            let invocations = dispatch.workgroupSize.reduce(1, *)
            if invocations > device.maxComputeWorkGroupInvocations {
                throw VulkanError.limitExceeded("\(dispatch.file) workgroup of \(invocations) > maxComputeWorkGroupInvocations \(device.maxComputeWorkGroupInvocations)")
            }
            if dispatch.pushConstants.bytes.count > PipelineStore.pushConstantBytes {
                throw VulkanError.limitExceeded("\(dispatch.file) push constants \(dispatch.pushConstants.bytes.count) bytes > \(PipelineStore.pushConstantBytes)")
            }
        }
    }

    /// Writes each tensor into a temporary staging area, copies it to its target and waits.
    /// A constant waiting to go up: its name in the graph and the region it will live in.
    struct Upload {
        let name: String
        let target: DeviceAllocation
        let dtype: DType
    }

    /// Uploads constants in batches of at most 256 MiB of staging, loading each value from
    /// `values` only when its batch is filled, so host memory holds one batch at a time.
    static func upload(_ items: [Upload], from values: any ConstantValues, device: VulkanDevice) throws {
        guard !items.isEmpty else { return }
        let batchLimit = 256 << 20
        var index = 0
        while index < items.count {
            var batch: [Upload] = []
            var bytes = 0
            while index < items.count, batch.isEmpty || bytes + items[index].target.bytes <= batchLimit {
                batch.append(items[index])
                bytes += aligned(items[index].target.bytes)
                index += 1
            }
            let staging = try device.allocator.allocate(bytes: bytes, kind: .staging)
            defer { device.allocator.release(staging) }
            guard let mapped = staging.mapped else { throw VulkanError.unsupported("staging memory is not mapped") }
            var offset = 0
            var copies: [(Int, DeviceAllocation, Int)] = []
            for item in batch {
                let value = try values.value(ofConstant: item.name)
                HostConversion.write(value, as: item.dtype, to: mapped + offset)
                copies.append((offset, item.target, value.shape.elementCount * item.dtype.byteCount))
                offset += aligned(item.target.bytes)
            }
            device.countConstantUpload(copies.reduce(0) { $0 + $1.2 })
            try device.runOnce { commands in
                for (source, target, size) in copies {
                    var region = VkBufferCopy(srcOffset: VkDeviceSize(staging.offset + source), dstOffset: VkDeviceSize(target.offset), size: VkDeviceSize(size))
                    vkCmdCopyBuffer(commands, staging.buffer, target.buffer, 1, &region)
                }
            }
        }
    }
}

/// Converts between host f32/int32 values and device storage bytes.
enum HostConversion {
    static func write(_ tensor: HostTensor, as dtype: DType, to pointer: UnsafeMutableRawPointer) {
        switch dtype {
        case .float32:
            tensor.scalars.withUnsafeBytes { pointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        case .float16:
            let target = pointer.bindMemory(to: Float16.self, capacity: tensor.scalars.count)
            for (index, value) in tensor.scalars.enumerated() { target[index] = Float16(value) }
        case .bfloat16:
            let target = pointer.bindMemory(to: UInt16.self, capacity: tensor.scalars.count)
            for (index, value) in tensor.scalars.enumerated() { target[index] = BFloat16.bits(value) }
        case .int32:
            tensor.integers.withUnsafeBytes { pointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        }
    }

    static func read(shape: Shape, dtype: DType, from pointer: UnsafeMutableRawPointer) -> HostTensor {
        let count = shape.elementCount
        switch dtype {
        case .float32:
            return HostTensor(shape: shape, scalars: Array(UnsafeBufferPointer(start: pointer.bindMemory(to: Float.self, capacity: count), count: count)))
        case .float16:
            let source = pointer.bindMemory(to: Float16.self, capacity: count)
            return HostTensor(shape: shape, scalars: (0..<count).map { Float(source[$0]) })
        case .bfloat16:
            let source = pointer.bindMemory(to: UInt16.self, capacity: count)
            return HostTensor(shape: shape, scalars: (0..<count).map { BFloat16.value(source[$0]) })
        case .int32:
            return HostTensor(shape: shape, integers: Array(UnsafeBufferPointer(start: pointer.bindMemory(to: Int32.self, capacity: count), count: count)))
        }
    }
}
