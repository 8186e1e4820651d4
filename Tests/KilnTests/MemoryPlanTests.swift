import Kiln
import Testing

@Suite struct MemoryPlanTests {
    /// A chain of 10 elementwise ops needs two live buffers at a time, not ten.
    @Test func chainReusesMemory() throws {
        let graph = Graph()
        var x = graph.input("x", [1024])
        for _ in 0..<10 { x = try graph.silu(x) }
        let order = graph.dependencies(of: [x])
        let plan = MemoryPlan(graph: graph, order: order, outputs: [x.id], inArena: { _ in true })
        #expect(plan.arenaBytes == 2 * 4096)
        #expect(plan.unplannedBytes == 11 * 4096)
    }

    /// No two tensors whose lifetimes overlap may share bytes; views share their source's storage.
    @Test func overlappingLifetimesNeverShareBytes() throws {
        let graph = Graph()
        let a = graph.input("a", [8, 16])
        let b = try graph.matmul(a, graph.constant("w", [16, 16]))
        let c = try graph.reshape(b, [128])
        let d = try graph.add(c, try graph.reshape(a, [128]))
        let e = try graph.silu(d)
        let order = graph.dependencies(of: [e, b])
        let plan = MemoryPlan(graph: graph, order: order, outputs: [e.id, b.id], inArena: { node in
            if case .constant = node.operation { false } else { true }
        })
        #expect(plan.storage[c.id] == b.id)
        #expect(plan.offsets[graph.dependencies(of: [e]).first { if case .constant = graph.nodes[$0].operation { true } else { false } }!] == nil)
        let roots = Array(plan.offsets.keys)
        for i in roots.indices {
            for j in roots.indices where j > i {
                let (p, q) = (roots[i], roots[j])
                guard let lp = plan.lifetimes[p], let lq = plan.lifetimes[q], lp.overlaps(lq) else { continue }
                let rp = plan.offsets[p]!..<(plan.offsets[p]! + plan.sizes[p]!)
                let rq = plan.offsets[q]!..<(plan.offsets[q]! + plan.sizes[q]!)
                #expect(!rp.overlaps(rq), "%\(p) and %\(q) overlap in time and space")
            }
        }
    }
}
