import Foundation
import Kiln
import Testing

@Suite struct SafeTensorsTests {
    let folder: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-safetensors-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    /// A file with a hand-written header and `body` bytes of data.
    func file(header: String, body: Int, name: String = "test.safetensors") throws -> URL {
        var data = Data((0..<8).map { UInt8(truncatingIfNeeded: UInt64(header.utf8.count) >> (8 * UInt64($0))) })
        data.append(Data(header.utf8))
        data.append(Data(count: body))
        let url = folder.appendingPathComponent(name)
        try data.write(to: url)
        return url
    }

    func expectError(_ url: URL, containing text: String) {
        do {
            _ = try SafeTensorsFile(url: url)
            Issue.record("\(url.lastPathComponent) was accepted")
        } catch let error as SafeTensorsError {
            #expect(error.description.contains(text), "\(error)")
            #expect(error.file == url.path)
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test func roundTrip() throws {
        let url = folder.appendingPathComponent("round.safetensors")
        let tensors = [
            "a": HostTensor(shape: [2, 3], scalars: [1, -2, 3.5, 0, 1e-3, 65504]),
            "b": HostTensor(shape: [3], scalars: [0.5, 1, 2], dtype: .float16),
            "ids": HostTensor(shape: [2, 2], integers: [1, 49407, 0, 7]),
        ]
        try SafeTensorsFile.write(tensors, metadata: ["format": "pt"], to: url)
        let file = try SafeTensorsFile(url: url)
        #expect(file.names == ["a", "b", "ids"])
        #expect(file.metadata == ["format": "pt"])
        #expect(try file.tensor("a") == tensors["a"])
        #expect(try file.tensor("b") == tensors["b"])
        #expect(try file.tensor("ids") == tensors["ids"])
        #expect(throws: SafeTensorsError.self) { try file.tensor("missing") }
    }

    @Test func rejectsTruncatedFile() throws {
        let url = folder.appendingPathComponent("short.safetensors")
        try Data([1, 2, 3]).write(to: url)
        expectError(url, containing: "too short")
    }

    @Test func rejectsHeaderPastEnd() throws {
        let url = folder.appendingPathComponent("long.safetensors")
        try Data([255, 255, 0, 0, 0, 0, 0, 0, 123]).write(to: url)
        expectError(url, containing: "header length")
    }

    @Test func rejectsBadJSON() throws {
        expectError(try file(header: "{not json", body: 0), containing: "not a JSON object")
    }

    @Test func rejectsSizeMismatch() throws {
        expectError(try file(header: #"{"x":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}"#, body: 12), containing: "needs 16 bytes")
    }

    @Test func rejectsOffsetsOutsideData() throws {
        expectError(try file(header: #"{"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, body: 8), containing: "outside")
    }

    @Test func rejectsOverlap() throws {
        let header = #"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        expectError(try file(header: header, body: 12), containing: "overlap")
    }

    @Test func rejectsUnknownDType() throws {
        expectError(try file(header: #"{"x":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}}"#, body: 2), containing: "unsupported dtype")
    }
}

@Suite struct GraphBuilderTests {
    @Test func shapeErrorsNameOpAndShapes() throws {
        let graph = Graph()
        let x = graph.input("x", [1, 320, 8, 8])
        do {
            _ = try graph.groupNorm(x, groups: 30, weight: graph.input("w", [320]), bias: graph.input("b", [320]), epsilon: 1e-5)
            Issue.record("320 channels in 30 groups was accepted")
        } catch let error as GraphError {
            #expect(error.description == "[groupNorm] channels 320 not divisible by groups 30")
        }
        #expect(throws: GraphError.self) { try graph.matmul(graph.input("a", [3, 4]), graph.input("b", [5, 6])) }
        #expect(throws: GraphError.self) { try graph.add(graph.input("c", [2, 3]), graph.input("d", [4])) }
        #expect(throws: GraphError.self) { try graph.conv2d(x, weight: graph.input("k", [8, 3, 3, 3]), bias: nil) }
        #expect(throws: GraphError.self) { try graph.reshape(x, [7, -1]) }
    }

    @Test func broadcastRules() {
        #expect(Graph.broadcast([2, 3, 4, 5], [3, 1, 5]) == [2, 3, 4, 5])
        #expect(Graph.broadcast([2, 1], [1, 7]) == [2, 7])
        #expect(Graph.broadcast([2, 1], [4, 1, 5]) == [4, 2, 5])
        #expect(Graph.broadcast([2, 3], [4]) == nil)
    }
}
