@testable import KilnVulkan
import Foundation
import Kiln
import Testing

@Suite struct RuntimeTests {
    @Test func sha256KnownVectors() {
        #expect(SHA256.hex(Array("".utf8)) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let long = Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
        #expect(SHA256.hex(long) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    @Test func shaderErrorNamesFileAndLine() throws {
        let sources: [String: String] = [
            "broken.comp": "#include \"helper.glsl\"\nlayout(local_size_x = 1) in;\nvoid main() {\n    float x = undefinedName;\n}\n",
            "helper.glsl": "// a helper\nfloat twice(float v) { return 2.0 * v; }\n",
        ]
        let compiler = ShaderCompiler(sources: { sources[$0] }, cacheDirectory: nil)
        do {
            _ = try compiler.spirv(file: "broken.comp", defines: [])
            Issue.record("a shader with an undefined name compiled")
        } catch VulkanError.shaderCompilation(let file, let line, let log) {
            #expect(file == "broken.comp")
            #expect(line == 4)
            #expect(log.contains("undefinedName"))
        }
    }

    @Test func spirvCacheServesSecondCompile() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-cache-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = "layout(local_size_x = 1) in;\nvoid main() {}\n"
        let first = ShaderCompiler(sources: { $0 == "tiny.comp" ? source : nil }, cacheDirectory: folder)
        let words = try first.spirv(file: "tiny.comp", defines: [("VALUE", "1")])
        #expect(first.compiledCount == 1)
        let second = ShaderCompiler(sources: { $0 == "tiny.comp" ? source : nil }, cacheDirectory: folder)
        #expect(try second.spirv(file: "tiny.comp", defines: [("VALUE", "1")]) == words)
        #expect(second.compiledCount == 0, "second compiler should read the disk cache")
        _ = try second.spirv(file: "tiny.comp", defines: [("VALUE", "2")])
        #expect(second.compiledCount == 1, "a new variant must compile")
    }

    @Test func deviceSelection() throws {
        let devices = try VulkanInstance.shared().physicalDevices()
        let first = try #require(devices.first)
        #expect(try DeviceSelection.choose(from: devices, selector: "0").index == 0)
        let fragment = String(first.info.name.prefix(4)).uppercased()
        #expect(try DeviceSelection.choose(from: devices, selector: fragment).info.name == first.info.name)
        #expect(try DeviceSelection.choose(from: devices, selector: first.info.uuid).index == first.index)
        #expect(throws: VulkanError.self) { try DeviceSelection.choose(from: devices, selector: "no such device 42") }
    }

    @Test func allocatorRefusesOverLimitBeforeAskingDriver() throws {
        let device = try TestDevice.vulkan().device
        let limit = Int(device.info.maxMemoryAllocationSize)
        do {
            _ = try device.allocator.allocate(bytes: limit + 1, kind: .deviceLocal)
            Issue.record("allocation over maxMemoryAllocationSize succeeded")
        } catch VulkanError.limitExceeded(let message) {
            #expect(message.contains("maxMemoryAllocationSize"))
        }
        let small = try device.allocator.allocate(bytes: 1000, kind: .staging)
        #expect(small.address % 256 == 0)
        device.allocator.release(small)
    }

    @Test func preparedGraphReplaysWithNewInputs() throws {
        let backend = try TestDevice.vulkan()
        let graph = Graph()
        let x = graph.input("x", [4])
        let y = try graph.add(try graph.scale(x, by: 2), graph.constant("c", [4]))
        let prepared = try backend.prepare(graph, outputs: [y], constants: ["c": HostTensor(shape: [4], scalars: [1, 1, 1, 1])])
        let first = try prepared.run(["x": HostTensor(shape: [4], scalars: [1, 2, 3, 4])])
        let second = try prepared.run(["x": HostTensor(shape: [4], scalars: [0, -1, 5, 0.5])])
        #expect(first[0].scalars == [3, 5, 7, 9])
        #expect(second[0].scalars == [1, -1, 11, 2])
        #expect(throws: GraphError.self) { try prepared.run(["x": HostTensor(shape: [5], scalars: [1, 2, 3, 4, 5])]) }
        #expect(throws: GraphError.self) { try prepared.run([:]) }
    }

    @Test func embeddingRejectsOutOfRangeIDs() throws {
        let graph = Graph()
        let y = try graph.embedding(graph.input("table", [3, 2]), ids: graph.input("ids", [2], dtype: .int32))
        let inputs = ["table": HostTensor(shape: [3, 2], scalars: [0, 1, 2, 3, 4, 5]), "ids": HostTensor(shape: [2], integers: [1, 7])]
        #expect(throws: GraphError.self) { try TestDevice.vulkan().run(graph, outputs: [y], inputs: inputs) }
        #expect(throws: GraphError.self) { try CPUBackend().run(graph, outputs: [y], inputs: inputs) }
    }
}

@Suite struct DeviceLimitTests {
    /// A graph whose activations cannot fit one allocation fails in prepare, naming the limit,
    /// before any memory is allocated or any weight uploaded.
    @Test func oversizedGraphFailsBeforeWork() throws {
        // Its own logical device, so no other test's allocations move the count.
        let backend = VulkanBackend(device: try VulkanDevice.open())
        let limit = Int(backend.device.info.maxMemoryAllocationSize)
        let count = limit / 4 / 2 + 1024
        let graph = Graph()
        let x = graph.input("x", [count])
        let y = try graph.add(x, graph.scale(x, by: 2))
        let reserved = backend.device.allocator.reservedBytes(.deviceLocal)
        do {
            _ = try backend.prepare(graph, outputs: [y], constants: [:])
            Issue.record("a \(3 * count * 4)-byte activation plan was accepted")
        } catch let error as MemoryLimitError {
            #expect(error.neededBytes > limit && error.availableBytes == limit, "\(error)")
            #expect("\(error)".contains("maxMemoryAllocationSize"))
        }
        #expect(backend.device.allocator.reservedBytes(.deviceLocal) == reserved)
    }
}
