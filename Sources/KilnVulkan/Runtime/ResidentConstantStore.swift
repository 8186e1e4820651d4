import Foundation
import KilnGraph

/// One device's copies of a component's resident weights (`ResidentWeights`): each constant is
/// uploaded once and read by every graph prepared over it. Graphs retain the store, so the
/// memory lives until the component is released and the last of those graphs is gone.
final class ResidentConstantStore: @unchecked Sendable {
    let device: VulkanDevice
    private let lock = NSLock()
    private var allocations: [String: DeviceAllocation] = [:]
    /// The constant name and storage type each key was filed for.
    private var contents: [String: (name: String, dtype: DType)] = [:]

    init(device: VulkanDevice) {
        self.device = device
    }

    deinit {
        for allocation in allocations.values { device.allocator.release(allocation) }
    }

    /// The allocation filed under `key` (`residentKey(name, shape, dtype)`), if it was uploaded.
    func allocation(_ key: String) -> DeviceAllocation? {
        lock.withLock { allocations[key] }
    }

    /// Files `allocation`, already holding its uploaded value, under `key`, and takes it over.
    /// False when a graph prepared at the same time filed one first: the caller keeps its own.
    func file(_ allocation: DeviceAllocation, under key: String, name: String, dtype: DType) -> Bool {
        lock.withLock {
            guard allocations[key] == nil else { return false }
            allocations[key] = allocation
            contents[key] = (name, dtype)
            return true
        }
    }

    /// The allocations holding `names`, with the name and storage type of each.
    func allocations(of names: Set<String>) -> [(allocation: DeviceAllocation, name: String, dtype: DType)] {
        lock.withLock {
            contents.compactMap { key, content in
                guard names.contains(content.name), let allocation = allocations[key] else { return nil }
                return (allocation, content.name, content.dtype)
            }
        }
    }
}
