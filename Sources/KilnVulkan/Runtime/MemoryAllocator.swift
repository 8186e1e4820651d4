import CVulkan
import Foundation

/// A region of device memory: `bytes` bytes at `offset` inside one block. Tensors are addressed by
/// `address` (a buffer device address); host-visible regions are also mapped at `mapped`.
public struct DeviceAllocation: @unchecked Sendable {
    let block: MemoryBlock
    public let offset: Int
    public let bytes: Int

    public var address: UInt64 { block.address + UInt64(offset) }
    var buffer: VkBuffer { block.buffer }
    var mapped: UnsafeMutableRawPointer? { block.mapped.map { $0 + offset } }
}

/// Where an allocation lives: tensors in device-local memory, uploads and readbacks in
/// host-visible staging memory.
public enum MemoryKind: Sendable {
    case deviceLocal
    case staging
}

/// One `vkAllocateMemory` with a single buffer over all of it, carved up by first-fit.
final class MemoryBlock: @unchecked Sendable {
    let memory: VkDeviceMemory
    let buffer: VkBuffer
    let address: UInt64
    let bytes: Int
    let kind: MemoryKind
    let mapped: UnsafeMutableRawPointer?
    /// Free ranges (offset, length), sorted by offset and coalesced.
    var free: [(offset: Int, length: Int)]

    init(memory: VkDeviceMemory, buffer: VkBuffer, address: UInt64, bytes: Int, kind: MemoryKind, mapped: UnsafeMutableRawPointer?) {
        self.memory = memory
        self.buffer = buffer
        self.address = address
        self.bytes = bytes
        self.kind = kind
        self.mapped = mapped
        self.free = [(0, bytes)]
    }

    func take(_ length: Int, alignment: Int) -> Int? {
        for (index, range) in free.enumerated() {
            let start = (range.offset + alignment - 1) / alignment * alignment
            guard start + length <= range.offset + range.length else { continue }
            var replacement: [(offset: Int, length: Int)] = []
            if start > range.offset { replacement.append((range.offset, start - range.offset)) }
            let end = start + length, rangeEnd = range.offset + range.length
            if end < rangeEnd { replacement.append((end, rangeEnd - end)) }
            free.replaceSubrange(index...index, with: replacement)
            return start
        }
        return nil
    }

    func give(offset: Int, length: Int) {
        free.append((offset, length))
        free.sort { $0.offset < $1.offset }
        var merged: [(offset: Int, length: Int)] = []
        for range in free {
            if let last = merged.last, last.offset + last.length == range.offset {
                merged[merged.count - 1].length += range.length
            } else {
                merged.append(range)
            }
        }
        free = merged
    }

    var isEmpty: Bool { free.count == 1 && free[0].length == bytes }
}

/// Sub-allocates tensors and staging areas from large blocks, never asking the driver for more
/// than maxMemoryAllocationSize in one allocation (2 GiB on lavapipe).
public final class MemoryAllocator: @unchecked Sendable {
    /// Blocks are at least this big so that many tensors share one driver allocation.
    static let preferredBlockBytes = 256 << 20
    static let alignment = 256

    // Plain handles rather than the device: the device releases its allocator from its deinit.
    private let handle: VkDevice
    private let physicalHandle: VkPhysicalDevice
    private let info: DeviceInfo
    private let health: DeviceHealth
    private let lock = NSLock()
    private var blocks: [MemoryBlock] = []

    init(handle: VkDevice, physical: PhysicalDevice, health: DeviceHealth) {
        self.handle = handle
        self.health = health
        self.physicalHandle = physical.handle
        self.info = physical.info
    }

    /// Reserves `bytes` of `kind` memory; fails with an error naming the limit before asking the
    /// driver for anything larger than maxMemoryAllocationSize.
    public func allocate(bytes: Int, kind: MemoryKind) throws -> DeviceAllocation {
        let length = max(Self.alignment, (bytes + Self.alignment - 1) / Self.alignment * Self.alignment)
        let limit = Int(clamping: info.maxMemoryAllocationSize)
        guard length <= limit else {
            throw VulkanError.limitExceeded(
                "\(length) bytes in one allocation > maxMemoryAllocationSize \(limit) on '\(info.name)'")
        }
        return try lock.withLock {
            for block in blocks where block.kind == kind {
                if let offset = block.take(length, alignment: Self.alignment) {
                    return DeviceAllocation(block: block, offset: offset, bytes: length)
                }
            }
            let block = try makeBlock(bytes: min(limit, max(length, Self.preferredBlockBytes)), kind: kind)
            blocks.append(block)
            guard let offset = block.take(length, alignment: Self.alignment) else {
                throw VulkanError.limitExceeded("allocation of \(length) bytes does not fit a fresh block")
            }
            return DeviceAllocation(block: block, offset: offset, bytes: length)
        }
    }

    /// Returns an allocation's bytes; empty blocks go back to the driver.
    public func release(_ allocation: DeviceAllocation) {
        lock.withLock {
            allocation.block.give(offset: allocation.offset, length: allocation.bytes)
            if allocation.block.isEmpty, let index = blocks.firstIndex(where: { $0 === allocation.block }) {
                destroy(blocks.remove(at: index))
            }
        }
    }

    /// Bytes currently held from the driver, per kind.
    public func reservedBytes(_ kind: MemoryKind) -> Int {
        lock.withLock { blocks.filter { $0.kind == kind }.reduce(0) { $0 + $1.bytes } }
    }

    func release() {
        lock.withLock {
            blocks.forEach(destroy)
            blocks.removeAll()
        }
    }

    private func destroy(_ block: MemoryBlock) {
        if block.mapped != nil { vkUnmapMemory(handle, block.memory) }
        vkDestroyBuffer(handle, block.buffer, nil)
        vkFreeMemory(handle, block.memory, nil)
    }

    private func makeBlock(bytes: Int, kind: MemoryKind) throws -> MemoryBlock {
        var bufferInfo = VkBufferCreateInfo()
        bufferInfo.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO
        bufferInfo.size = VkDeviceSize(bytes)
        bufferInfo.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT.rawValue | VK_BUFFER_USAGE_SHADER_DEVICE_ADDRESS_BIT.rawValue
            | VK_BUFFER_USAGE_TRANSFER_SRC_BIT.rawValue | VK_BUFFER_USAGE_TRANSFER_DST_BIT.rawValue
        bufferInfo.sharingMode = VK_SHARING_MODE_EXCLUSIVE
        var buffer: VkBuffer?
        try check(vkCreateBuffer(handle, &bufferInfo, nil, &buffer), "vkCreateBuffer(\(bytes) bytes)")
        guard let buffer else { throw VulkanError.call("vkCreateBuffer", VK_ERROR_OUT_OF_DEVICE_MEMORY.rawValue) }

        var requirements = VkMemoryRequirements()
        vkGetBufferMemoryRequirements(handle, buffer, &requirements)
        guard let typeIndex = memoryType(bits: requirements.memoryTypeBits, kind: kind) else {
            vkDestroyBuffer(handle, buffer, nil)
            throw VulkanError.unsupported("no memory type for \(kind) memory on '\(info.name)'")
        }
        var flags = VkMemoryAllocateFlagsInfo()
        flags.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_FLAGS_INFO
        flags.flags = VK_MEMORY_ALLOCATE_DEVICE_ADDRESS_BIT.rawValue
        do {
            try health.check(.allocation, call: "vkAllocateMemory(\(requirements.size) bytes, \(kind))")
        } catch {
            vkDestroyBuffer(handle, buffer, nil)
            throw error
        }
        var memory: VkDeviceMemory?
        let result = withUnsafePointer(to: &flags) { flagsPointer in
            var allocateInfo = VkMemoryAllocateInfo()
            allocateInfo.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO
            allocateInfo.pNext = UnsafeRawPointer(flagsPointer)
            allocateInfo.allocationSize = requirements.size
            allocateInfo.memoryTypeIndex = typeIndex
            return vkAllocateMemory(handle, &allocateInfo, nil, &memory)
        }
        guard result == VK_SUCCESS, let memory else {
            vkDestroyBuffer(handle, buffer, nil)
            throw VulkanError.call("vkAllocateMemory(\(requirements.size) bytes, \(kind))", result.rawValue)
        }
        try check(vkBindBufferMemory(handle, buffer, memory, 0), "vkBindBufferMemory")

        var mapped: UnsafeMutableRawPointer?
        if kind == .staging {
            try check(vkMapMemory(handle, memory, 0, VkDeviceSize(VK_WHOLE_SIZE), 0, &mapped), "vkMapMemory")
        }
        var addressInfo = VkBufferDeviceAddressInfo()
        addressInfo.sType = VK_STRUCTURE_TYPE_BUFFER_DEVICE_ADDRESS_INFO
        addressInfo.buffer = buffer
        let address = vkGetBufferDeviceAddress(handle, &addressInfo)
        return MemoryBlock(memory: memory, buffer: buffer, address: address, bytes: bytes, kind: kind, mapped: mapped)
    }

    private func memoryType(bits: UInt32, kind: MemoryKind) -> UInt32? {
        var properties = VkPhysicalDeviceMemoryProperties()
        vkGetPhysicalDeviceMemoryProperties(physicalHandle, &properties)
        let types = withUnsafeBytes(of: properties.memoryTypes) { raw in
            Array(raw.bindMemory(to: VkMemoryType.self).prefix(Int(properties.memoryTypeCount)))
        }
        let deviceLocal = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT.rawValue
        let hostVisible = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT.rawValue | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT.rawValue
        let hostCached = VK_MEMORY_PROPERTY_HOST_CACHED_BIT.rawValue
        let wanted: [UInt32] = kind == .deviceLocal ? [deviceLocal, 0] : [hostVisible | hostCached, hostVisible]
        for required in wanted {
            for (index, type) in types.enumerated()
            where bits & (1 << UInt32(index)) != 0 && type.propertyFlags & required == required {
                return UInt32(index)
            }
        }
        return nil
    }
}

/// Holds allocations made while something is being built and releases them if the build fails
/// before `keep()` is called (Swift runs no deinit for an object whose init threw).
final class AllocationScope {
    private let allocator: MemoryAllocator
    private var held: [DeviceAllocation] = []
    private var kept = false

    init(_ allocator: MemoryAllocator) { self.allocator = allocator }

    func allocate(bytes: Int, kind: MemoryKind) throws -> DeviceAllocation {
        let allocation = try allocator.allocate(bytes: bytes, kind: kind)
        held.append(allocation)
        return allocation
    }

    func keep() { kept = true }

    deinit {
        if !kept { held.forEach(allocator.release) }
    }
}
