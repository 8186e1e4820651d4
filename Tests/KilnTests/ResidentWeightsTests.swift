import Kiln
import Testing

/// Weights bound with one `ResidentWeights` are uploaded once per backend and shared by every
/// graph prepared over them; graphs without it own their copies. Both backends, the Vulkan one
/// a device of the suite's own so other suites' uploads do not count.
@Suite(.serialized) struct ResidentWeightsTests {
    static let vulkan: Result<VulkanBackend, Error> = Result { try VulkanBackend() }

    static let weights = InMemoryTensors([
        "w": HostTensor(shape: [5, 3], scalars: (0..<15).map { Float($0) / 7 - 1 }),
        "b": HostTensor(shape: [5], scalars: [0.5, -1, 2, 0, 0.25]),
    ])

    /// `x [rows, 3] -> x w^T + b`, with the weights bound through `residency`.
    static func prepare(rows: Int, on backend: Backend, residency: ResidentWeights?) throws -> (any PreparedGraph, Tensor) {
        let graph = Graph()
        let binder = WeightBinder(graph: graph, source: weights, dtype: .float32, residency: residency)
        let x = graph.input("x", [rows, 3])
        let y = try graph.matmul(x, binder.weight("w", [5, 3]), bias: binder.weight("b", [5]), transposeB: true)
        return (try backend.prepare(graph, outputs: [y], constants: binder.constants()), y)
    }

    static func backends() throws -> [Backend] { [CPUBackend(), try vulkan.get()] }

    @Test func residentWeightsAreUploadedOncePerBackend() throws {
        for backend in try Self.backends() {
            let residency = ResidentWeights(label: "linear")
            let start = backend.uploadedConstantBytes
            let (first, _) = try Self.prepare(rows: 2, on: backend, residency: residency)
            #expect(backend.uploadedConstantBytes - start == 20 * 4, "\(backend.name): the first graph uploads the 20 weights")
            let (second, _) = try Self.prepare(rows: 7, on: backend, residency: residency)
            let (third, _) = try Self.prepare(rows: 2, on: backend, residency: residency)
            #expect(backend.uploadedConstantBytes - start == 20 * 4, "\(backend.name): later graphs upload nothing")
            // Same weights, same answers, whichever graph ran.
            let x = HostTensor(shape: [2, 3], scalars: [1, 2, 3, -1, 0, 0.5])
            let expected = try first.run(["x": x])[0]
            #expect(try third.run(["x": x])[0] == expected)
            let longer = try second.run(["x": HostTensor(shape: [7, 3], scalars: x.scalars + .init(repeating: 0, count: 15))])[0]
            #expect(Array(longer.scalars.prefix(10)) == expected.scalars, "\(backend.name)")
            #expect(residency.storeCount == 1)
        }
    }

    @Test func graphsWithoutResidencyOwnTheirCopies() throws {
        for backend in try Self.backends() {
            let start = backend.uploadedConstantBytes
            _ = try Self.prepare(rows: 2, on: backend, residency: nil)
            _ = try Self.prepare(rows: 2, on: backend, residency: nil)
            #expect(backend.uploadedConstantBytes - start == 2 * 20 * 4, "\(backend.name)")
        }
    }

    @Test func releasedWeightsUploadAgainAndLiveGraphsKeepTheirs() throws {
        for backend in try Self.backends() {
            let residency = ResidentWeights(label: "linear")
            let (kept, _) = try Self.prepare(rows: 2, on: backend, residency: residency)
            let x = HostTensor(shape: [2, 3], scalars: [1, 2, 3, -1, 0, 0.5])
            let expected = try kept.run(["x": x])[0]
            residency.release()
            #expect(residency.storeCount == 0)
            let start = backend.uploadedConstantBytes
            let (fresh, _) = try Self.prepare(rows: 2, on: backend, residency: residency)
            #expect(backend.uploadedConstantBytes - start == 20 * 4, "\(backend.name): a released component uploads again")
            #expect(try kept.run(["x": x])[0] == expected, "\(backend.name): a graph prepared earlier still reads its weights")
            #expect(try fresh.run(["x": x])[0] == expected)
        }
    }

    @Test func sameNameOtherShapeIsAnotherResidentTensor() throws {
        for backend in try Self.backends() {
            let residency = ResidentWeights(label: "tables")
            func table(_ width: Int) throws -> [Float] {
                let graph = Graph()
                let constant = graph.constant("table", [width])
                let y = try graph.add(constant, graph.input("x", [width]))
                let values = HostTensor(shape: [width], scalars: (0..<width).map(Float.init))
                let prepared = try backend.prepare(graph, outputs: [y], constants: [String: HostTensor]().adding(["table": values], residentIn: residency))
                return try prepared.run(["x": HostTensor.zeros([width])])[0].scalars
            }
            #expect(try table(3) == [0, 1, 2])
            #expect(try table(5) == [0, 1, 2, 3, 4], "\(backend.name): a 5-wide table is not the 3-wide one")
        }
    }

    @Test func cacheKeepsRecentEntriesWithinCapacityAndBudget() throws {
        let cache = PreparedGraphCache<String, Int>(capacity: 2, byteBudget: 100)
        var made: [String] = []
        func value(_ key: String, _ bytes: Int) -> Int {
            cache.value(for: key, bytes: { _ in bytes }) { made.append(key); return key.count }
        }
        _ = value("a", 10)
        _ = value("b", 10)
        _ = value("a", 10)
        #expect(made == ["a", "b"], "a hit makes nothing")
        _ = value("c", 10)
        #expect(cache.keys == ["a", "c"], "the least recently used (b) leaves at capacity")
        _ = value("d", 95)
        #expect(cache.keys == ["d"], "over the byte budget the others leave; the newest stays")
        _ = value("e", 500)
        #expect(cache.keys == ["e"], "a single entry over budget is still kept")
        cache.removeAll()
        #expect(cache.keys.isEmpty)
    }
}
