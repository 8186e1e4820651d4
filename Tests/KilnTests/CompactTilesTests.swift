@testable import KilnVulkan
import Foundation
import Kiln
import KilnShaders
import Testing

/// `CompactTiles`: which nodes of a graph take compact register tiles on a CPU device, and what
/// those tiles are. Numerics of the compact kernels: `OperationCaseTests.compactKernelsMatchReference`.
@Suite struct CompactTilesTests {
    /// Kernel contexts for every node of `graph` (8-byte aligned made-up addresses, as a prepared
    /// graph's arena gives), with `variant`.
    static func contexts(_ graph: Graph, outputs: [Tensor], variant: KernelVariant) throws -> [KernelContext] {
        let device = try TestDevice.vulkan().device.info
        var next: UInt64 = 1 << 20
        var addresses: [Int: UInt64] = [:]
        for id in graph.dependencies(of: outputs) {
            addresses[id] = next
            next += UInt64(graph.nodes[id].shape.elementCount * 4 + 256)
        }
        let argument = { (node: Node) in TensorArgument(address: addresses[node.id] ?? 0, shape: node.shape, dtype: node.dtype) }
        return graph.dependencies(of: outputs).map { id in
            let node = graph.nodes[id]
            var context = KernelContext(node: node, inputs: node.inputs.map { argument(graph.nodes[$0]) }, output: argument(node), device: device)
            context.variant = variant
            return context
        }
    }

    /// The defines of each node's first dispatch after the compact-tile choice, by op name.
    static func chosenDefines(_ graph: Graph, outputs: [Tensor], variant: KernelVariant = .automatic) throws -> [(String, [String: String])] {
        var contexts = try contexts(graph, outputs: outputs, variant: variant)
        let tuned = try contexts.map { try KernelTable.dispatches($0) }
        for index in CompactTiles.nodesPreferringCompactTiles(tuned, contexts: contexts, graph: graph) { contexts[index].compactTilesChosen = true }
        return try contexts.compactMap { context in
            guard let dispatch = try KernelTable.dispatches(context).first else { return nil }
            return (context.node.operation.name, Dictionary(dispatch.defines, uniquingKeysWith: { $1 }))
        }
    }

    func requireRegisterKernels() throws {
        try #require(try TestDevice.vulkan().usesRegisterBlockedKernels, "the device does not run the register-blocked kernels")
    }

    /// A tiny model's layers: a row-window convolution, a four-deep linear and attention would all
    /// take tuned tiles one by one; in a graph this small every one takes the compact tile.
    @Test func smallGraphTakesCompactTilesEverywhere() throws {
        try requireRegisterKernels()
        let graph = Graph()
        let x = graph.input("x", [1, 8, 64, 64], dtype: .float16)
        let convolved = try graph.conv2d(x, weight: graph.input("w", [8, 8, 3, 3], dtype: .float16), bias: nil, padding: (1, 1))
        let tokens = graph.input("t", [1, 64, 64], dtype: .float16)
        let projected = try graph.matmul(tokens, graph.input("p", [64, 64], dtype: .float16), transposeB: true)
        let attended = try graph.attention(graph.input("q", [1, 2, 64, 32], dtype: .float16),
                                           graph.input("k", [1, 2, 64, 32], dtype: .float16), graph.input("v", [1, 2, 64, 32], dtype: .float16))
        let tuned = try Self.chosenDefines(graph, outputs: [convolved, projected, attended], variant: .registerBlocked)
        #expect(tuned.first { $0.0 == "conv2d" }?.1["ROW_WINDOW"] == "1", "the case must start from a tuned row window: \(tuned)")
        for (operation, defines) in try Self.chosenDefines(graph, outputs: [convolved, projected, attended]) {
            switch operation {
            case "conv2d", "matmul":
                #expect(defines["TILE_M"] == "8" && defines["TILE_N"] == "4" && defines["ROW_WINDOW"] == nil, "\(operation): \(defines)")
            case "attention":
                #expect(defines["TILE_Q"] == "8" && defines["KEYS_PER_LANE"] == "1", "\(defines)")
            default:
                break
            }
        }
    }

    /// In a graph with real work (two 320-channel 3x3 convolutions at 32x32, batch 2: 3.8 GFLOP),
    /// they keep their tuned row window, and a 1x1 projection to 4 channels (5 MFLOP on a pipeline of
    /// its own) takes the compact tile.
    @Test func largeWorkKeepsTunedTilesAndSmallPipelinesGoCompact() throws {
        try requireRegisterKernels()
        let graph = Graph()
        let x = graph.input("x", [2, 320, 32, 32], dtype: .float16)
        let first = try graph.conv2d(x, weight: graph.input("w1", [320, 320, 3, 3], dtype: .float16), bias: nil, padding: (1, 1))
        let second = try graph.conv2d(first, weight: graph.input("w2", [320, 320, 3, 3], dtype: .float16), bias: nil, padding: (1, 1))
        let projected = try graph.conv2d(second, weight: graph.input("w3", [4, 320, 1, 1], dtype: .float16), bias: nil)
        #expect(graph.flops(of: [projected]) >= CompactTiles.smallGraphWork)
        let chosen = try Self.chosenDefines(graph, outputs: [projected])
        let convolutions = chosen.filter { $0.0 == "conv2d" }.map { $0.1 }
        #expect(convolutions.count == 3)
        #expect(convolutions.prefix(2).allSatisfy { $0["ROW_WINDOW"] == "1" && $0["TILE_M"] != "8" }, "\(convolutions)")
        #expect(convolutions.last?["ROW_WINDOW"] == nil && convolutions.last?["TILE_N"] == "4", "\(convolutions)")
    }

    /// `.registerBlocked` always keeps the tuned tiles, `.compactRegisterBlocked` always takes compact ones.
    @Test func explicitVariantsOverrideTheRule() throws {
        try requireRegisterKernels()
        let graph = Graph()
        let x = graph.input("x", [1, 8, 64, 64], dtype: .float16)
        let convolved = try graph.conv2d(x, weight: graph.input("w", [8, 8, 3, 3], dtype: .float16), bias: nil, padding: (1, 1))
        #expect(try Self.chosenDefines(graph, outputs: [convolved], variant: .registerBlocked).first?.1["ROW_WINDOW"] == "1")
        var context = try #require(try Self.contexts(graph, outputs: [convolved], variant: .compactRegisterBlocked).last)
        #expect(Dictionary(try #require(try KernelTable.dispatches(context).first).defines, uniquingKeysWith: { $1 })["TILE_N"] == "4")
        context.variant = .registerBlocked
        context.compactTilesChosen = true
        #expect(Dictionary(try #require(try KernelTable.dispatches(context).first).defines, uniquingKeysWith: { $1 })["ROW_WINDOW"] == "1",
                "the per-node choice applies to .automatic only")
    }
}

/// Building a graph's pipelines together: on several threads, once each, with the driver's
/// deferred compile done while preparing.
@Suite struct PipelineCreationTests {
    /// glslang compiles different kernels on several threads at once to the same SPIR-V as one
    /// after the other (its process-wide initialisation happens once).
    @Test func concurrentShaderCompilesMatchSerialOnes() throws {
        let defines = (0..<12).map { [("KILN_F16", "\($0 % 2)"), ("UNARY_FUNCTION", "\($0 / 2)"), ("VECTOR4", "1")] }
        let serial = ShaderCompiler(sources: ShaderLibrary.source, cacheDirectory: nil)
        let expected = try defines.map { try serial.spirv(file: "elementwise.comp", defines: $0) }
        let concurrent = ShaderCompiler(sources: ShaderLibrary.source, cacheDirectory: nil)
        let results = Locked([Int: [UInt32]]())
        DispatchQueue.concurrentPerform(iterations: defines.count) { index in
            let words = try? concurrent.spirv(file: "elementwise.comp", defines: defines[index])
            results.update { $0[index] = words }
        }
        let compiled = results.value
        for index in defines.indices { #expect(compiled[index] == expected[index], "variant \(defines[index])") }
        #expect(concurrent.compiledCount == defines.count)
    }

    /// `prepare` builds every distinct pipeline of the graph once (here on a device of its own, so
    /// the counts are this graph's), dispatches each new one while preparing, and a run builds none.
    @Test func prepareBuildsEachDistinctPipelineOnce() throws {
        let device = try VulkanDevice.open()
        let backend = VulkanBackend(device: device)
        let graph = Graph()
        let x = graph.input("x", [2, 8])
        var y = x
        for _ in 0..<3 { y = try graph.silu(graph.add(y, x)) }
        let prepared = try backend.prepare(graph, outputs: [y], constants: [String: HostTensor]())
        #expect(device.pipelines.createdCount == 2, "one add and one silu pipeline, each built once")
        #expect(device.pipelineFirstDispatchSeconds > 0, "new pipelines are dispatched while preparing")
        _ = try prepared.run(["x": HostTensor(shape: [2, 8], scalars: (0..<16).map(Float.init))])
        #expect(device.pipelines.createdCount == 2)
        #expect(device.instance.validationMessages.all.isEmpty, "\(device.instance.validationMessages.all)")
    }

    /// A key asked for twice is built once; asked for again, it is found, not rebuilt.
    @Test func repeatedKeysAreBuiltOnce() throws {
        let device = try VulkanDevice.open()
        let (first, created) = try device.pipelines.pipelines(for: [Self.silu, Self.silu], threads: 4)
        #expect(first.count == 2 && first[0] == first[1] && created.count == 1)
        let (again, createdAgain) = try device.pipelines.pipelines(for: [Self.silu], threads: 4)
        #expect(again == [first[0]] && createdAgain.isEmpty)
        #expect(device.pipelines.createdCount == 1)
    }

    /// elementwise.comp's f32 SiLU (UNARY_FUNCTION 0) on 64-wide workgroups.
    static let silu = PipelineKey(file: "elementwise.comp", defines: [("KILN_F16", "0"), ("UNARY_FUNCTION", "0"), ("VECTOR4", "0")],
                                  specialization: [64])

    /// When several kernels fail, the error names the first failing one in the keys' order, whatever
    /// thread finished first.
    @Test func firstFailingKeyInOrderIsReported() throws {
        let device = try TestDevice.vulkan().device
        let keys = ["missing-a.comp", "missing-b.comp", "missing-c.comp"].map { PipelineKey(file: $0, defines: [], specialization: [8]) }
        for _ in 0..<3 {
            #expect {
                _ = try device.pipelines.pipelines(for: [Self.silu] + keys, threads: 4)
            } throws: { error in
                "\(error)".contains("missing-a.comp")
            }
        }
    }
}

/// A value behind a lock, for results gathered from worker threads.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value

    init(_ value: Value) { stored = value }

    var value: Value { lock.withLock { stored } }

    func update(_ body: (inout Value) -> Void) { lock.withLock { body(&stored) } }
}
