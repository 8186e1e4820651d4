import KilnGraph

/// One compute dispatch: which kernel variant, its push constants and its grid.
public struct Dispatch: Sendable {
    public var file: String
    /// Variant `#define`s, e.g. `("KILN_F16", "1")`.
    public var defines: [(String, String)]
    /// Workgroup size (specialization constants 0, 1, 2).
    public var workgroupSize: [UInt32]
    public var pushConstants: PushConstants
    public var groups: (x: UInt32, y: UInt32, z: UInt32)

    public var key: PipelineKey { PipelineKey(file: file, defines: defines, specialization: workgroupSize) }

    public init(file: String, defines: [(String, String)], workgroupSize: [UInt32], pushConstants: PushConstants,
                groups: (x: UInt32, y: UInt32, z: UInt32)) {
        self.file = file
        self.defines = defines
        self.workgroupSize = workgroupSize
        self.pushConstants = pushConstants
        self.groups = groups
    }

    /// A 1-D grid for grid-stride loops over `count` items: enough groups to cover them, at most
    /// 65535 (the smallest maxComputeWorkGroupCount Vulkan allows) and at most `cap` groups.
    public static func linearGroups(count: Int, workgroupSize: Int, cap: Int = 65535) -> (x: UInt32, y: UInt32, z: UInt32) {
        let needed = max(1, (count + workgroupSize - 1) / workgroupSize)
        return (UInt32(min(needed, cap, 65535)), 1, 1)
    }
}

/// Where a node's tensor lives on the device, with its shape and storage type.
public struct TensorArgument: Sendable {
    public let address: UInt64
    public let shape: Shape
    public let dtype: DType
}

/// Which family of matmul/conv/attention kernels to use.
public enum KernelVariant: String, Sendable, CaseIterable {
    /// Chosen from the device: register-blocked on CPU implementations, shared-memory tiles on GPUs;
    /// on CPU implementations the kernels whose work in a graph is too small to pay for a tuned
    /// tile's compile time take compact tiles (`CompactTiles`).
    case automatic
    /// Shared-memory tiles (the GPU kernels), on any device: lets lavapipe test them.
    case sharedMemoryTiles = "shared"
    /// Register-blocked kernels with subgroup broadcasts (the CPU-device kernels), where supported,
    /// always with the tiles tuned for speed: what the op-case table's shapes were chosen to cover.
    case registerBlocked = "register"
    /// Register-blocked kernels with compact tiles for every matmul, conv2d and attention, where
    /// supported: lets every compact variant be tested.
    case compactRegisterBlocked = "compact"
}

/// What a kernel-table entry needs to choose and fill its dispatches.
public struct KernelContext: Sendable {
    public let node: Node
    public let inputs: [TensorArgument]
    public let output: TensorArgument
    public let device: DeviceInfo
    public var variant: KernelVariant = .automatic
    /// With `.automatic`, whether this node takes compact tiles (set per graph by
    /// `CompactTiles.nodes`); `.compactRegisterBlocked` implies it, the other variants ignore it.
    public var compactTilesChosen = false

    /// The storage-type define every float kernel takes.
    public var storageDefines: [(String, String)] { [("KILN_F16", output.dtype == .float16 ? "1" : "0")] }

    /// True on CPU implementations (lavapipe/SwiftShader), where register-blocked kernels without
    /// shared memory win; false on GPUs, where shared-memory tiles win.
    public var prefersRegisterBlocking: Bool { device.type == .cpu }

    /// The register-blocked matmul/conv/attention kernels share rows across a subgroup with
    /// subgroupBroadcast, so they need those operations and a subgroup size dividing their tiles
    /// (24 rows, 16 queries): 4 or 8 lanes, as CPU implementations have.
    public var useRegisterBlockedKernels: Bool { Self.useRegisterBlockedKernels(variant, on: device) }

    /// Whether `variant` runs matmul/conv/attention on the register-blocked kernels on `device`.
    public static func useRegisterBlockedKernels(_ variant: KernelVariant, on device: DeviceInfo) -> Bool {
        let supported = device.subgroupBroadcastAndArithmetic && [4, 8].contains(device.subgroupSize)
        return switch variant {
        case .automatic: device.type == .cpu && supported
        case .registerBlocked, .compactRegisterBlocked: supported
        case .sharedMemoryTiles: false
        }
    }

    /// Whether a register-blocked matmul, conv2d or attention takes its compact tile (see `CompactTiles`).
    public var useCompactTiles: Bool {
        guard useRegisterBlockedKernels else { return false }
        return switch variant {
        case .automatic: compactTilesChosen
        case .compactRegisterBlocked: true
        case .registerBlocked, .sharedMemoryTiles: false
        }
    }

    /// `SUBGROUP_SIZE` for the register-blocked kernels.
    var subgroupDefine: (String, String) { ("SUBGROUP_SIZE", "\(device.subgroupSize)") }

    /// Whether `tensors` may be read and written four elements at a time through 64-bit words
    /// (common.glsl's loadWide4 / storeWide4): the device has shaderInt64 and each tensor is 8-byte
    /// aligned. The shapes' own conditions (a multiple of 4 along the wide axis) are the caller's.
    func allowsWideAccess(_ tensors: [TensorArgument]) -> Bool {
        device.shaderInt64 && tensors.allSatisfy { $0.address % 8 == 0 }
    }
}
