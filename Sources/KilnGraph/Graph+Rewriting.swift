// Graph-to-graph rewrites that backends apply before planning (fusions, alternative algorithms).

extension Graph {
    /// A copy of the nodes `outputs` need, in order, offering each to `replacement` with a lookup
    /// from this graph's node ids to tensors of the copy: a tensor it returns stands for the node,
    /// nil copies the node as it is. Nodes a replacement no longer reads stay in the copy but fall
    /// outside the returned outputs' dependencies, so no backend runs them.
    public func rewritten(
        outputs: [Tensor], _ replacement: (_ node: Node, _ mapped: (Int) -> Tensor?, _ graph: Graph) -> Tensor?
    ) -> (graph: Graph, outputs: [Tensor]) {
        let copy = Graph()
        var mapped: [Int: Tensor] = [:]
        for id in dependencies(of: outputs) {
            let node = nodes[id]
            mapped[id] = replacement(node, { mapped[$0] }, copy)
                ?? copy.append(node.operation, node.inputs.compactMap { mapped[$0] }, shape: node.shape, dtype: node.dtype)
        }
        return (copy, outputs.compactMap { mapped[$0.id] })
    }

    /// Whether a node's value is read by exactly one of the nodes `outputs` need and is not itself
    /// an output: a fusion may then fold it into its reader and never store it.
    public func readOnce(outputs: [Tensor]) -> (Int) -> Bool {
        var readers: [Int: Int] = [:]
        for id in dependencies(of: outputs) { for input in nodes[id].inputs { readers[input, default: 0] += 1 } }
        let outputIDs = Set(outputs.map(\.id))
        return { readers[$0] == 1 && !outputIDs.contains($0) }
    }
}
