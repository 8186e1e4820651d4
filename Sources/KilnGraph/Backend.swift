/// Something that runs graphs: the CPU reference or a Vulkan device.
public protocol Backend: AnyObject, Sendable {
    /// Human-readable name, e.g. `cpu` or `vulkan:llvmpipe (LLVM 15.0.6, 256 bits)`.
    var name: String { get }

    /// Plans memory and compiles whatever `outputs` need; `constants` supplies every
    /// `Graph.constant` they depend on (uploaded once).
    func prepare(_ graph: Graph, outputs: [Tensor], constants: any ConstantValues) throws -> any PreparedGraph

    /// The most bytes one prepared graph's activation arena (`MemoryPlan.arenaBytes`) should take;
    /// work that can be split, such as tiled VAE decoding, splits above it.
    var activationBudgetBytes: Int { get }

    /// Bytes that weights and activations share (a GPU's largest device-local heap): a model
    /// whose weights exceed it is refused before any work starts.
    var memoryCapacityBytes: Int { get }

    /// Peak activation bytes (`MemoryPlan.arenaBytes`) of `graph` as this backend would prepare it,
    /// after any rewrites of its own, without preparing anything: what tiling decisions compare
    /// with `activationBudgetBytes`.
    func plannedArenaBytes(_ graph: Graph, outputs: [Tensor]) -> Int

    /// Bytes of graph constants (weights) this backend has copied into its own storage since it
    /// was created, as stored: uploads to a GPU, f32 copies on the CPU. Constants that a graph
    /// finds resident (`ConstantValues.residency(ofConstant:)`) cost nothing here.
    var uploadedConstantBytes: Int { get }

    /// Writes new values into the resident copies of `names` that `residency` holds on this
    /// backend, in place: the same allocations, so every graph prepared over them reads the new
    /// values from its next run on. Names without a copy here yet are skipped (a later
    /// preparation loads them from its own constants). `values` gives f32 values of each name's
    /// shape, rounded once to the storage type as they are stored; the bytes count in
    /// `uploadedConstantBytes`. This is how adapters (LoRA) are merged into and taken out of
    /// loaded weights without preparing any graph again.
    func rewriteResidentConstants(_ names: Set<String>, of residency: ResidentWeights, from values: any ConstantValues) throws

    /// Why this backend's device can run nothing any more (a lost GPU: the call that lost it),
    /// nil while it works. Whoever holds the backend must open a new one.
    var deviceFailure: String? { get }
}

extension Backend {
    /// Host memory does not get lost.
    public var deviceFailure: String? { nil }
}

/// A graph ready to run repeatedly with new inputs.
public protocol PreparedGraph: AnyObject {
    /// The memory plan of the graph's activations.
    var memoryPlan: MemoryPlan { get }
    /// Runs once; returns the outputs in the order given to `prepare`, as f32 host values.
    func run(_ inputs: [String: HostTensor]) throws -> [HostTensor]
}

extension Backend {
    /// Prepares and runs once: the convenient form for tests and one-off work.
    public func run(
        _ graph: Graph, outputs: [Tensor], inputs: [String: HostTensor] = [:], constants: any ConstantValues = [String: HostTensor]()
    ) throws -> [HostTensor] {
        try prepare(graph, outputs: outputs, constants: constants).run(inputs)
    }
}

/// Checks that a caller's tensors match the graph's declared inputs (or constants) by name and shape.
public func validateBindings(
    _ graph: Graph, nodes: [Int], supplied: any ConstantValues, constants: Bool
) throws {
    let kind = constants ? "constant" : "input"
    for id in nodes {
        let node = graph.nodes[id]
        let name: String
        switch node.operation {
        case .input(let n) where !constants: name = n
        case .constant(let n) where constants: name = n
        default: continue
        }
        guard let value = supplied.shape(ofConstant: name) else {
            throw GraphError(kind, "no value supplied for \(kind) '\(name)' \(node.shape)")
        }
        guard value.shape == node.shape else {
            throw GraphError(kind, "'\(name)' must be \(node.shape), got \(value.shape)")
        }
        guard value.isInteger == (node.dtype == .int32) else {
            throw GraphError(kind, "'\(name)' must be \(node.dtype.shortName), got \(value.isInteger ? "i32" : "floating point")")
        }
    }
}
