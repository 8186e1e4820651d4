/// Where each activation lives inside one arena, from a liveness analysis: two tensors share bytes
/// only when their lifetimes do not overlap. Reshapes are views and share their source's storage.
public struct MemoryPlan: Sendable {
    /// Node id -> the node whose storage it uses (itself, or the source of a view).
    public let storage: [Int: Int]
    /// Storage node id -> byte offset in the arena.
    public let offsets: [Int: Int]
    /// Storage node id -> bytes reserved (aligned).
    public let sizes: [Int: Int]
    /// Storage node id -> (first step, last step) in `order` during which it must stay intact.
    public let lifetimes: [Int: ClosedRange<Int>]
    /// Bytes the arena needs: the peak of simultaneously live activations.
    public let arenaBytes: Int
    /// Bytes needed if nothing were reused, for comparison.
    public let unplannedBytes: Int

    /// Plans the nodes in `order` (an execution order). Nodes for which `inArena` is false (weights)
    /// get no offset. Outputs stay live to the end.
    public init(graph: Graph, order: [Int], outputs: [Int], alignment: Int = 256, inArena: (Node) -> Bool) {
        var storage: [Int: Int] = [:]
        var lifetimes: [Int: ClosedRange<Int>] = [:]
        let lastStep = max(order.count - 1, 0)
        for (step, id) in order.enumerated() {
            let node = graph.nodes[id]
            if case .reshape = node.operation, let source = node.inputs.first, let root = storage[source] {
                storage[id] = root
            } else {
                storage[id] = id
                // Inputs are uploaded before the first kernel runs, so they are live from step 0.
                let isInput = if case .input = node.operation { true } else { false }
                lifetimes[id] = (isInput ? 0 : step)...step
            }
            for input in node.inputs {
                guard let root = storage[input], let range = lifetimes[root] else { continue }
                lifetimes[root] = range.lowerBound...max(range.upperBound, step)
            }
        }
        for output in outputs {
            if let root = storage[output], let range = lifetimes[root] { lifetimes[root] = range.lowerBound...lastStep }
        }

        var sizes: [Int: Int] = [:]
        for (root, _) in lifetimes where inArena(graph.nodes[root]) {
            let node = graph.nodes[root]
            let bytes = node.shape.elementCount * node.dtype.byteCount
            sizes[root] = (bytes + alignment - 1) / alignment * alignment
        }

        // Greedy by size: place the largest tensors first at the lowest offset that does not
        // collide with an already placed tensor whose lifetime overlaps.
        var offsets: [Int: Int] = [:]
        var placed: [(offset: Int, size: Int, life: ClosedRange<Int>)] = []
        var peak = 0
        for root in sizes.keys.sorted(by: { (sizes[$0]!, $1) > (sizes[$1]!, $0) }) {
            let size = sizes[root]!, life = lifetimes[root]!
            let conflicts = placed.filter { $0.life.overlaps(life) }.sorted { $0.offset < $1.offset }
            var offset = 0
            for other in conflicts {
                if offset + size <= other.offset { break }
                offset = max(offset, other.offset + other.size)
            }
            offsets[root] = offset
            placed.append((offset, size, life))
            peak = max(peak, offset + size)
        }
        self.storage = storage
        self.offsets = offsets
        self.sizes = sizes
        self.lifetimes = lifetimes.filter { sizes[$0.key] != nil }
        self.arenaBytes = peak
        self.unplannedBytes = sizes.values.reduce(0, +)
    }
}

extension MemoryPlan {
    /// How backends plan a graph: everything `outputs` need, in creation order, with weights
    /// (constants) outside the arena.
    public init(activationsOf graph: Graph, outputs: [Tensor]) {
        self.init(graph: graph, order: graph.dependencies(of: outputs), outputs: outputs.map(\.id), inArena: { node in
            if case .constant = node.operation { false } else { true }
        })
    }
}
