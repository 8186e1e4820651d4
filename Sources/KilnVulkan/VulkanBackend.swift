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
    /// Whether residual adds are folded into the conv2d or matmul producing an operand
    /// (`Graph.fusingAddends`); off runs every add as its own pass (the plain decomposition).
    public let fusesAddends: Bool
    /// Whether large 3x3 "same" convolutions run as Winograd F(2x2, 3x3) (`Graph.winogradConvolution`)
    /// where `winogradPays` says so; on by default on CPU devices, where that was measured.
    public let usesWinograd: Bool

    public var name: String { "vulkan:\(device.info.name)" }

    /// The arena is one allocation, so it can be no larger than maxMemoryAllocationSize.
    public var activationBudgetBytes: Int { Int(clamping: device.info.maxMemoryAllocationSize) }

    public var uploadedConstantBytes: Int { device.uploadedConstantBytes }

    public var deviceFailure: String? { device.lostBy.map { "'\(device.info.name)' was lost by \($0)" } }

    public var memoryCapacityBytes: Int {
        Int(clamping: device.info.memoryHeaps.filter(\.deviceLocal).map(\.bytes).max() ?? 0)
    }

    public init(device: VulkanDevice, kernelVariant: KernelVariant = .automatic, fusesAddends: Bool = true, usesWinograd: Bool? = nil) {
        self.device = device
        self.kernelVariant = kernelVariant
        self.fusesAddends = fusesAddends
        self.usesWinograd = usesWinograd ?? (device.info.type == .cpu)
    }

    /// Whether this backend's matmul, conv2d and attention run on the register-blocked kernels (CPU
    /// devices), whose tiles are tuned or compact (`CompactTiles`).
    public var usesRegisterBlockedKernels: Bool { KernelContext.useRegisterBlockedKernels(kernelVariant, on: device.info) }

    /// Opens the device named by `selector` (index, UUID or name substring; KILN_DEVICE if nil).
    public convenience init(
        selector: String? = nil, kernelVariant: KernelVariant = .automatic, fusesAddends: Bool = true, usesWinograd: Bool? = nil
    ) throws {
        self.init(device: try VulkanDevice.open(selector: selector), kernelVariant: kernelVariant, fusesAddends: fusesAddends,
                  usesWinograd: usesWinograd)
    }

    /// Where Winograd beat the direct kernel on lavapipe (BENCHMARKS.md, 2026-11-23): its GEMMs need
    /// depth (1.8x at 512 channels, none at 128) and, at 256-320 channels, many tiles (the VAE's
    /// 256x256 level gained; the U-Net's 320 channels at 2048 tiles did not). Every index stays
    /// within 32 bits.
    public static func winogradPays(input: Shape, weight: Shape) -> Bool {
        let tiles = input[0] * ((input[2] + 1) / 2) * ((input[3] + 1) / 2)
        let (channels, depth) = (input[1], min(input[1], weight[0]))
        let deepEnough = depth >= 512 ? tiles >= 1024 : depth >= 256 && tiles >= 16384
        return deepEnough && channels % 4 == 0 && 16 * tiles * max(input[1], weight[0]) < Int(UInt32.max)
    }

    public func prepare(_ graph: Graph, outputs: [Tensor], constants: any ConstantValues) throws -> any PreparedGraph {
        try prepare(graph, outputs: outputs, constants: constants, profile: false)
    }

    /// Like `prepare`, with a timestamp after every op so `VulkanPreparedGraph.lastProfile` is filled.
    public func prepareProfiled(_ graph: Graph, outputs: [Tensor], constants: any ConstantValues) throws -> VulkanPreparedGraph {
        try prepare(graph, outputs: outputs, constants: constants, profile: true)
    }

    private func prepare(_ graph: Graph, outputs: [Tensor], constants: any ConstantValues, profile: Bool) throws -> VulkanPreparedGraph {
        let (graph, outputs) = rewritten(graph, outputs: outputs)
        return try VulkanPreparedGraph(device: device, graph: graph, outputs: outputs, constants: constants, variant: kernelVariant, profile: profile)
    }

    /// Uploads the new values through a staging copy into the allocations the resident copies
    /// already have, and waits for the copy to finish.
    public func rewriteResidentConstants(_ names: Set<String>, of residency: ResidentWeights, from values: any ConstantValues) throws {
        guard let store: ResidentConstantStore = residency.existingStore(for: device) else { return }
        let targets = store.allocations(of: names)
        for target in targets {
            let expected = target.allocation.bytes, found = (values.shape(ofConstant: target.name)?.shape.elementCount ?? -1) * target.dtype.byteCount
            guard found <= expected, found > 0 else {
                throw GraphError("constant", "new value of resident '\(target.name)' needs \(found) bytes, its copy holds \(expected)")
            }
        }
        try VulkanPreparedGraph.upload(
            targets.map { VulkanPreparedGraph.Upload(name: $0.name, target: $0.allocation, dtype: $0.dtype) }, from: values, device: device)
    }

    /// The Winograd convolutions' transformed tiles take more memory than the direct kernel's.
    public func plannedArenaBytes(_ graph: Graph, outputs: [Tensor]) -> Int {
        let (graph, outputs) = rewritten(graph, outputs: outputs)
        return MemoryPlan(activationsOf: graph, outputs: outputs).arenaBytes
    }

    /// `graph` as this backend runs it: residual adds folded, large convolutions as Winograd.
    private func rewritten(_ graph: Graph, outputs: [Tensor]) -> (Graph, [Tensor]) {
        var (graph, outputs) = fusesAddends ? graph.fusingAddends(outputs: outputs) : (graph, outputs)
        if usesWinograd { (graph, outputs) = graph.winogradConvolutions(outputs: outputs, chosen: Self.winogradPays) }
        return (graph, outputs)
    }
}

/// Time spent in one node's kernels during the last run (profiled graphs only); `nodeID` is the
/// node in the graph as prepared (after any fusion).
public struct OperationTiming: Sendable {
    public let nodeID: Int
    public let operation: String
    public let seconds: Double
    public let flops: Double
}
