import Foundation
import Kiln
import KilnVerification
import Synchronization
import Testing

/// A model's weights reach the device one tensor at a time from their source, never as a whole
/// second copy in host memory: binding reads nothing, preparing reads each used tensor once.
@Suite struct WeightStreamingTests {
    /// Counts every `load` of the tensors it serves.
    final class CountingSource: TensorSource, @unchecked Sendable {
        let tensors: InMemoryTensors
        let loads = Mutex<[String]>([])
        init(_ tensors: [String: HostTensor]) { self.tensors = InMemoryTensors(tensors) }
        func shape(of name: String) -> Shape? { tensors.shape(of: name) }
        var names: [String] { tensors.names }
        var origin: String { "counting" }
        func load(_ name: String) throws -> HostTensor {
            loads.withLock { $0.append(name) }
            return try tensors.load(name)
        }
    }

    static func weights() -> [String: HostTensor] {
        func values(_ shape: Shape, _ seed: Float) -> HostTensor {
            HostTensor(shape: shape, scalars: (0..<shape.elementCount).map { sin(Float($0) * 0.37 + seed) })
        }
        return ["a.weight": values([6, 4], 1), "a.bias": values([6], 2), "b.weight": values([3, 6], 3), "unused.weight": values([2, 2], 4)]
    }

    static func build(_ source: TensorSource, dtype: DType) throws -> (Graph, Tensor, BoundWeights) {
        let graph = Graph()
        let binder = WeightBinder(graph: graph, source: source, dtype: dtype)
        let scope = WeightScope(binder)
        let x = graph.input("x", [2, 4], dtype: dtype)
        let y = try scope("b").linear(graph.silu(scope("a").linear(x, 4, 6)), 6, 3, bias: false)
        return (graph, y, binder.constants())
    }

    @Test(arguments: ["cpu", "vulkan"]) func preparingLoadsEachUsedTensorOnce(backendName: String) throws {
        let source = CountingSource(Self.weights())
        let backend: Backend = backendName == "cpu" ? CPUBackend() : try VulkanBackend()
        let dtype: DType = backendName == "cpu" ? .float32 : .float16
        let (graph, output, constants) = try Self.build(source, dtype: dtype)
        #expect(source.loads.withLock { $0 }.isEmpty, "binding weights must not read them")
        #expect(constants.deviceBytes == (24 + 6 + 18) * dtype.byteCount)
        let prepared = try backend.prepare(graph, outputs: [output], constants: constants)
        #expect(source.loads.withLock { $0 }.sorted() == ["a.bias", "a.weight", "b.weight"])

        let x = HostTensor(shape: [2, 4], scalars: (0..<8).map { Float($0) / 8 - 0.5 })
        let streamed = try prepared.run(["x": x])[0]
        let (referenceGraph, referenceOutput, _) = try Self.build(InMemoryTensors(Self.weights()), dtype: .float32)
        let reference = try CPUBackend().run(referenceGraph, outputs: [referenceOutput], inputs: ["x": x], constants: Self.weights())[0]
        #expect(Verification.compare(streamed, reference).relative <= (dtype == .float16 ? 2e-3 : 1e-6))
    }

    @Test func anUnboundNameIsAnErrorNamingIt() throws {
        let (_, _, constants) = try Self.build(CountingSource(Self.weights()), dtype: .float32)
        #expect(constants.shape(ofConstant: "unused.weight") == nil)
        #expect(throws: WeightError.missing(origin: "counting", name: "unused.weight", expected: nil)) {
            try constants.value(ofConstant: "unused.weight")
        }
    }
}
