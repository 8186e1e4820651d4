import Kiln
import KilnVerification
import Testing

/// `multiHeadAttention` on `[B, L, H * D]` tensors against what it replaces: split the heads
/// (reshape + permute), `attention`, merge them again; on the CPU reference and on Vulkan with
/// both kernel families.
@Suite struct AttentionLayoutTests {
    static func build(_ graph: Graph, heads: Int, causal: Bool) throws -> (direct: Tensor, permuted: Tensor, inputs: [String: HostTensor]) {
        var random = SeededRandom(name: "attention layout \(heads) \(causal)")
        var inputs: [String: HostTensor] = [:]
        func input(_ name: String, _ shape: Shape) -> Tensor {
            inputs[name] = HostTensor(shape: shape, scalars: random.normals(shape.elementCount))
            return graph.input(name, shape)
        }
        let q = input("q", [2, 19, heads * 16]), k = input("k", [2, causal ? 19 : 33, heads * 16]), v = input("v", [2, causal ? 19 : 33, heads * 8])
        let direct = try graph.multiHeadAttention(q, k, v, heads: heads, causal: causal)
        let permuted = try graph.mergeHeads(graph.attention(
            graph.splitHeads(q, heads: heads), graph.splitHeads(k, heads: heads), graph.splitHeads(v, heads: heads), causal: causal))
        return (direct, permuted, inputs)
    }

    @Test(arguments: [(1, false), (3, false), (4, true)])
    func sameAsSplittingAndMergingHeads(heads: Int, causal: Bool) throws {
        let graph = Graph()
        let (direct, permuted, inputs) = try Self.build(graph, heads: heads, causal: causal)
        #expect(direct.shape == permuted.shape)
        let reference = try CPUBackend().run(graph, outputs: [direct, permuted], inputs: inputs)
        #expect(reference[0].scalars == reference[1].scalars, "the CPU reference defines the layout as split, attend, merge")
        for variant in [KernelVariant.automatic, .registerBlocked, .sharedMemoryTiles] {
            let backend = VulkanBackend(device: try TestDevice.vulkan().device, kernelVariant: variant)
            let gpu = try backend.run(graph, outputs: [direct], inputs: inputs)[0]
            #expect(Verification.compare(gpu, reference[1]).relative <= 1e-5, "\(variant)")
        }
    }

    @Test func mismatchedShapesAreRefused() {
        let graph = Graph()
        #expect(throws: GraphError.self) { try graph.multiHeadAttention(graph.input("q", [1, 4, 30]), graph.input("k", [1, 4, 30]), graph.input("v", [1, 4, 30]), heads: 4) }
        #expect(throws: GraphError.self) { try graph.multiHeadAttention(graph.input("q", [1, 4, 32]), graph.input("k", [1, 5, 32]), graph.input("v", [1, 4, 32]), heads: 4) }
    }
}
