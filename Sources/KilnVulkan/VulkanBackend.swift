import CVulkan
import Foundation
import KilnGraph

/// Runs graphs on one Vulkan device. Each `prepare` plans the activations into one arena,
/// uploads the constants once, builds the pipelines and records a command buffer that every
/// `run` replays with new inputs.
public final class VulkanBackend: Backend, @unchecked Sendable {
    public let device: VulkanDevice
    /// Which matmul/conv/attention kernel family to use (automatic by default).
    public let kernelVariant: KernelVariant

    public var name: String { "vulkan:\(device.info.name)" }

    /// The arena is one allocation, so it can be no larger than maxMemoryAllocationSize.
    public var activationBudgetBytes: Int { Int(clamping: device.info.maxMemoryAllocationSize) }

    public var memoryCapacityBytes: Int {
        Int(clamping: device.info.memoryHeaps.filter(\.deviceLocal).map(\.bytes).max() ?? 0)
    }

    public init(device: VulkanDevice, kernelVariant: KernelVariant = .automatic) {
        self.device = device
        self.kernelVariant = kernelVariant
    }

    /// Opens the device named by `selector` (index, UUID or name substring; KILN_DEVICE if nil).
    public convenience init(selector: String? = nil, kernelVariant: KernelVariant = .automatic) throws {
        self.init(device: try VulkanDevice.open(selector: selector), kernelVariant: kernelVariant)
    }

    public func prepare(_ graph: Graph, outputs: [Tensor], constants: any ConstantValues) throws -> any PreparedGraph {
        try VulkanPreparedGraph(device: device, graph: graph, outputs: outputs, constants: constants, variant: kernelVariant, profile: false)
    }

    /// Like `prepare`, with a timestamp after every op so `VulkanPreparedGraph.lastProfile` is filled.
    public func prepareProfiled(_ graph: Graph, outputs: [Tensor], constants: any ConstantValues) throws -> VulkanPreparedGraph {
        try VulkanPreparedGraph(device: device, graph: graph, outputs: outputs, constants: constants, variant: kernelVariant, profile: true)
    }
}

/// Time spent in one node's kernels during the last run (profiled graphs only).
public struct OperationTiming: Sendable {
    public let nodeID: Int
    public let operation: String
    public let seconds: Double
    public let flops: Double
}
