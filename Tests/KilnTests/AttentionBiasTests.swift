import Kiln
import KilnVerification
import Testing

/// Attention with an additive bias (T5's relative position bias) against its decomposition in
/// basic ops, `softmax(q kᵀ * scale + bias [+ causal mask]) v` with the scores materialised, on
/// the CPU reference and on Vulkan (both kernel families).
@Suite struct AttentionBiasTests {
    /// One configuration: shapes, scale, causal, and whether the bias is shared by the batch.
    struct Configuration: Sendable, CustomStringConvertible {
        let batch: Int, heads: Int, queries: Int, keys: Int, depth: Int, valueDepth: Int
        let scale: Float, causal: Bool, sharedBias: Bool
        var description: String { "B\(batch) H\(heads) Lq\(queries) Lk\(keys) D\(depth) Dv\(valueDepth) scale\(scale) causal \(causal) shared \(sharedBias)" }
    }

    static let configurations: [Configuration] = [
        Configuration(batch: 2, heads: 3, queries: 7, keys: 7, depth: 16, valueDepth: 16, scale: 1, causal: false, sharedBias: true),
        Configuration(batch: 1, heads: 5, queries: 77, keys: 77, depth: 12, valueDepth: 12, scale: 1, causal: false, sharedBias: true),
        Configuration(batch: 2, heads: 2, queries: 21, keys: 50, depth: 40, valueDepth: 24, scale: 0.3, causal: false, sharedBias: false),
        Configuration(batch: 2, heads: 2, queries: 33, keys: 33, depth: 8, valueDepth: 8, scale: 0.5, causal: true, sharedBias: false),
    ]

    /// Random inputs for `c` and the graph of both forms: `(fused, decomposed)`.
    static func build(_ c: Configuration, _ graph: Graph) throws -> (fused: Tensor, decomposed: Tensor, inputs: [String: HostTensor]) {
        var random = SeededRandom(name: c.description)
        var inputs: [String: HostTensor] = [:]
        func input(_ name: String, _ shape: Shape, scale: Float) -> Tensor {
            inputs[name] = HostTensor(shape: shape, scalars: random.normals(shape.elementCount, scale: scale))
            return graph.input(name, shape)
        }
        let q = input("q", [c.batch, c.heads, c.queries, c.depth], scale: 1)
        let k = input("k", [c.batch, c.heads, c.keys, c.depth], scale: 1)
        let v = input("v", [c.batch, c.heads, c.keys, c.valueDepth], scale: 1)
        let bias = input("bias", [c.sharedBias ? 1 : c.batch, c.heads, c.queries, c.keys], scale: 3)
        let fused = try graph.attention(q, k, v, scale: c.scale, causal: c.causal, bias: bias)
        var scores = try graph.add(graph.scale(graph.matmul(q, k, transposeB: true), by: c.scale), bias)  // [B, H, Lq, Lk]
        if c.causal {
            // Masked keys get a large negative score, which the softmax turns into exact zeros.
            let mask = (0..<c.queries).flatMap { i in (0..<c.keys).map { j -> Float in j > i ? -1e9 : 0 } }
            inputs["mask"] = HostTensor(shape: [c.queries, c.keys], scalars: mask)
            scores = try graph.add(scores, graph.input("mask", [c.queries, c.keys]))
        }
        let decomposed = try graph.matmul(graph.softmax(scores), v)                                          // [B, H, Lq, Dv]
        return (fused, decomposed, inputs)
    }

    @Test(arguments: configurations)
    func fusedMatchesDecompositionOnReference(_ c: Configuration) throws {
        let graph = Graph()
        let (fused, decomposed, inputs) = try Self.build(c, graph)
        let outputs = try CPUBackend().run(graph, outputs: [fused, decomposed], inputs: inputs)
        let error = Verification.compare(outputs[0], outputs[1])
        #expect(error.relative <= 1e-5, "\(c): CPU fused vs decomposed relative error \(error.relative)")
    }

    @Test(arguments: configurations, [KernelVariant.automatic, .registerBlocked, .sharedMemoryTiles])
    func vulkanMatchesDecomposition(_ c: Configuration, _ variant: KernelVariant) throws {
        let backend = VulkanBackend(device: try TestDevice.vulkan().device, kernelVariant: variant)
        let graph = Graph()
        let (fused, decomposed, inputs) = try Self.build(c, graph)
        let reference = try CPUBackend().run(graph, outputs: [decomposed], inputs: inputs)
        let outputs = try backend.run(graph, outputs: [fused], inputs: inputs)
        let error = Verification.compare(outputs[0], reference[0])
        #expect(error.relative <= 1e-4, "\(c) \(variant): Vulkan fused vs CPU decomposed relative error \(error.relative)")
        #expect(TestDevice.validationMessages.isEmpty, "\(TestDevice.validationMessages)")
    }

    @Test func biasOfTheWrongShapeIsRejected() throws {
        let graph = Graph()
        let q = graph.input("q", [2, 4, 7, 8]), k = graph.input("k", [2, 4, 9, 8]), v = graph.input("v", [2, 4, 9, 8])
        for shape: Shape in [[2, 4, 9, 7], [3, 4, 7, 9], [1, 1, 7, 9], [4, 7, 9]] {
            #expect(throws: GraphError.self, "bias \(shape)") { try graph.attention(q, k, v, bias: graph.input("bias", shape)) }
        }
        #expect(throws: GraphError.self) { try graph.attention(q, k, v, bias: graph.input("half", [1, 4, 7, 9], dtype: .float16)) }
        let accepted = try graph.attention(q, k, v, bias: graph.input("shared", [1, 4, 7, 9]))
        #expect(accepted.shape == [2, 4, 7, 8])
    }
}
