import Foundation
import KilnGraph
import Testing

/// Reading and writing `.safetensors`: a round trip, every dtype the reader converts, and each
/// way a header can be damaged producing a `SafeTensorsError` that names the file (never a crash).
/// A class so `deinit` can remove the scratch folder each test gets.
@Suite final class SafeTensorsTests {
    let folder: URL

    init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-safetensors-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: folder) }

    /// A file with a hand-written header followed by `body`.
    func file(header: String, body: Data, name: String = "test.safetensors") throws -> URL {
        var data = Data((0..<8).map { UInt8(truncatingIfNeeded: UInt64(header.utf8.count) >> (8 * UInt64($0))) })
        data.append(Data(header.utf8))
        data.append(body)
        let url = folder.appendingPathComponent(name)
        try data.write(to: url)
        return url
    }

    func file(header: String, body: Int) throws -> URL { try file(header: header, body: Data(count: body)) }

    /// Little-endian bytes of `values`.
    func bytes<T>(_ values: [T]) -> Data { values.withUnsafeBytes { Data($0) } }

    func expectError(_ url: URL, containing text: String, tensor: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try SafeTensorsFile(url: url)
            Issue.record("\(url.lastPathComponent) was accepted", sourceLocation: sourceLocation)
        } catch let error as SafeTensorsError {
            #expect(error.description.contains(text), "\(error)", sourceLocation: sourceLocation)
            #expect(error.file == url.path, sourceLocation: sourceLocation)
            #expect(error.description.contains(url.path), sourceLocation: sourceLocation)
            if let tensor { #expect(error.tensor == tensor, sourceLocation: sourceLocation) }
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func roundTrip() throws {
        let url = folder.appendingPathComponent("round.safetensors")
        let tensors = [
            "a": HostTensor(shape: [2, 3], scalars: [1, -2, 3.5, 0, 1e-3, 65504]),
            "b": HostTensor(shape: [3], scalars: [0.5, 1, 2], dtype: .float16),
            "ids": HostTensor(shape: [2, 2], integers: [1, 49407, 0, 7]),
            "scalar": HostTensor(shape: [], scalars: [42]),
        ]
        try SafeTensorsFile.write(tensors, metadata: ["format": "pt", "note": "ünïcode"], to: url)
        let file = try SafeTensorsFile(url: url)
        #expect(file.names == ["a", "b", "ids", "scalar"])
        #expect(file.metadata == ["format": "pt", "note": "ünïcode"])
        for (name, tensor) in tensors { #expect(try file.tensor(name) == tensor, "\(name)") }
        #expect(try file.info("b") == ("F16", [3]))
        #expect(try file.info("ids") == ("I32", [2, 2]))
        #expect(throws: SafeTensorsError.self) { try file.tensor("missing") }
        #expect(throws: SafeTensorsError.self) { try file.info("missing") }
        // The rename leaves nothing but the file itself behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["round.safetensors"])
    }

    @Test func overwriteReplacesWholeFile() throws {
        let url = folder.appendingPathComponent("twice.safetensors")
        try SafeTensorsFile.write(["big": HostTensor.zeros([1000])], metadata: [:], to: url)
        try SafeTensorsFile.write(["small": HostTensor(shape: [1], scalars: [3])], metadata: [:], to: url)
        let file = try SafeTensorsFile(url: url)
        #expect(file.names == ["small"])
        #expect(try file.tensor("small").scalars == [3])
    }

    @Test func writerRejectsInconsistentTensor() throws {
        var tensor = HostTensor(shape: [2], scalars: [1, 2])
        tensor.scalars.append(3)
        let url = folder.appendingPathComponent("bad.safetensors")
        #expect(throws: SafeTensorsError.self) { try SafeTensorsFile.write(["x": tensor], metadata: [:], to: url) }
        #expect(!FileManager.default.fileExists(atPath: url.path))
    }

    /// Every dtype the reader converts, from hand-written bytes (the layout torch writes).
    @Test func readsEveryDType() throws {
        let f16 = bytes([Float16(1.5), Float16(-2)].map(\.bitPattern))
        let bf16 = bytes([BFloat16.bits(0.15625), BFloat16.bits(-3)])
        let f64 = bytes([0.25, -1e10])
        let i64 = bytes([Int64(-7), Int64(Int32.max)])
        var body = Data()
        var header: [String] = []
        for (name, dtype, count, data) in [("h", "F16", 2, f16), ("bh", "BF16", 2, bf16), ("d", "F64", 2, f64), ("l", "I64", 2, i64)] {
            header.append(#""\#(name)":{"dtype":"\#(dtype)","shape":[\#(count)],"data_offsets":[\#(body.count),\#(body.count + data.count)]}"#)
            body.append(data)
        }
        let file = try SafeTensorsFile(url: try file(header: "{" + header.joined(separator: ",") + "}", body: body))
        #expect(try file.tensor("h") == HostTensor(shape: [2], scalars: [1.5, -2], dtype: .float16))
        #expect(try file.tensor("bh") == HostTensor(shape: [2], scalars: [0.15625, -3], dtype: .bfloat16))
        #expect(try file.tensor("d") == HostTensor(shape: [2], scalars: [0.25, -1e10]))
        #expect(try file.tensor("l") == HostTensor(shape: [2], integers: [-7, Int32.max]))
        #expect(file.metadata.isEmpty)
    }

    @Test func rejectsInt64OutsideInt32() throws {
        let url = try file(header: #"{"l":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#, body: bytes([Int64(1) << 40]))
        let file = try SafeTensorsFile(url: url)
        let error = #expect(throws: SafeTensorsError.self) { try file.tensor("l") }
        #expect(error?.tensor == "l")
        #expect(error?.description.contains("1099511627776") == true, "\(String(describing: error))")
    }

    @Test func rejectsTruncatedFile() throws {
        let url = folder.appendingPathComponent("short.safetensors")
        try Data([1, 2, 3]).write(to: url)
        expectError(url, containing: "too short")
    }

    @Test func rejectsEmptyFile() throws {
        let url = folder.appendingPathComponent("empty.safetensors")
        try Data().write(to: url)
        expectError(url, containing: "too short")
    }

    @Test func rejectsMissingFile() {
        expectError(folder.appendingPathComponent("absent.safetensors"), containing: "cannot read")
    }

    @Test func rejectsHeaderPastEnd() throws {
        let url = folder.appendingPathComponent("long.safetensors")
        try Data([255, 255, 0, 0, 0, 0, 0, 0, 123]).write(to: url)
        expectError(url, containing: "header length")
    }

    @Test func rejectsHugeHeaderLength() throws {
        let url = folder.appendingPathComponent("huge.safetensors")
        try Data([255, 255, 255, 255, 255, 255, 255, 255]).write(to: url)
        expectError(url, containing: "header length")
    }

    @Test func rejectsBadJSON() throws {
        expectError(try file(header: "{not json", body: 0), containing: "not a JSON object")
        expectError(try file(header: "[1, 2]", body: 0), containing: "not a JSON object")
    }

    @Test func rejectsIncompleteEntry() throws {
        expectError(try file(header: #"{"x":{"dtype":"F32","shape":[2]}}"#, body: 8), containing: "data_offsets", tensor: "x")
        expectError(try file(header: #"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0]}}"#, body: 8), containing: "data_offsets", tensor: "x")
        expectError(try file(header: #"{"x":{"dtype":"F32","shape":"2","data_offsets":[0,8]}}"#, body: 8), containing: "shape", tensor: "x")
    }

    @Test func rejectsNonStringMetadata() throws {
        expectError(try file(header: #"{"__metadata__":{"step":3}}"#, body: 0), containing: "not a string")
    }

    @Test func rejectsSizeMismatch() throws {
        expectError(try file(header: #"{"x":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}"#, body: 12),
                    containing: "needs 16 bytes", tensor: "x")
    }

    @Test func rejectsShapeTooLargeToAddress() throws {
        let header = #"{"x":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#
        expectError(try file(header: header, body: 8), containing: "too large", tensor: "x")
    }

    @Test func rejectsNegativeDimensionsAndOffsets() throws {
        expectError(try file(header: #"{"x":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, body: 8), containing: "negative", tensor: "x")
        expectError(try file(header: #"{"x":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#, body: 8), containing: "outside", tensor: "x")
    }

    @Test func rejectsOffsetsOutsideData() throws {
        expectError(try file(header: #"{"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, body: 8), containing: "outside", tensor: "x")
    }

    @Test func rejectsOverlap() throws {
        let header = #"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        expectError(try file(header: header, body: 12), containing: "overlap")
    }

    @Test func rejectsUnknownDType() throws {
        expectError(try file(header: #"{"x":{"dtype":"C64","shape":[2],"data_offsets":[0,2]}}"#, body: 2),
                    containing: "unsupported dtype", tensor: "x")
    }
}

@Suite struct GraphBuilderTests {
    @Test func shapeErrorsNameOpAndShapes() throws {
        let graph = Graph()
        let x = graph.input("x", [1, 320, 8, 8])
        #expect(throws: GraphError("groupNorm", "channels 320 not divisible by groups 30")) {
            try graph.groupNorm(x, groups: 30, weight: graph.input("w", [320]), bias: graph.input("b", [320]), epsilon: 1e-5)
        }
        #expect(GraphError("groupNorm", "channels 320 not divisible by groups 30").description == "[groupNorm] channels 320 not divisible by groups 30")
        #expect(throws: GraphError.self) { try graph.matmul(graph.input("a", [3, 4]), graph.input("b", [5, 6])) }
        #expect(throws: GraphError.self) { try graph.add(graph.input("c", [2, 3]), graph.input("d", [4])) }
        #expect(throws: GraphError.self) { try graph.conv2d(x, weight: graph.input("k", [8, 3, 3, 3]), bias: nil) }
        #expect(throws: GraphError.self) { try graph.reshape(x, [7, -1]) }
        #expect(throws: GraphError.self) { try graph.attention(graph.input("q", [1, 2, 5, 8]), graph.input("k", [1, 2, 6, 4]), graph.input("v", [1, 2, 6, 8])) }
        #expect(throws: GraphError.self) { try graph.embedding(graph.input("table", [10, 4]), ids: graph.input("f", [3])) }
    }

    @Test func builtShapes() throws {
        let graph = Graph()
        let conv = try graph.conv2d(graph.input("x", [2, 3, 9, 7]), weight: graph.input("w", [6, 3, 3, 3]), bias: nil, stride: (2, 2), padding: (1, 1))
        #expect(conv.shape == [2, 6, 5, 4])
        let product = try graph.matmul(graph.input("a", [2, 11, 6]), graph.input("b", [9, 11]), transposeA: true, transposeB: true)
        #expect(product.shape == [2, 6, 9])
        #expect(try graph.linear(graph.input("h", [2, 7, 16]), weight: graph.input("lw", [33, 16]), bias: nil).shape == [2, 7, 33])
        #expect(try graph.timestepEmbedding(graph.input("t", [4]), TimestepEmbedding(dimension: 15, flipSinToCos: true, downscaleFrequencyShift: 0)).shape == [4, 15])
    }

    @Test func broadcastRules() {
        #expect(Graph.broadcast([2, 3, 4, 5], [3, 1, 5]) == [2, 3, 4, 5])
        #expect(Graph.broadcast([2, 1], [1, 7]) == [2, 7])
        #expect(Graph.broadcast([2, 1], [4, 1, 5]) == [4, 2, 5])
        #expect(Graph.broadcast([2, 3], [4]) == nil)
    }
}
