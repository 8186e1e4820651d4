import Foundation
import KilnCPU
import KilnGraph
import KilnVerification
import Testing

/// The CPU reference against PyTorch: Tests/Fixtures/generate_op_fixtures.py records each op's
/// inputs, torch's output (computed in f64, stored f32) and the op's parameters in
/// Fixtures/ops/<case>.safetensors. Each fixture is rebuilt with the Graph builders and run here.
@Suite struct CPUReferenceTests {
    static let folder: URL? = Bundle.module.url(forResource: "Fixtures", withExtension: nil)?.appendingPathComponent("ops")
    static let files: [URL] = folder
        .flatMap { try? FileManager.default.contentsOfDirectory(at: $0, includingPropertiesForKeys: nil) }
        .map { $0.filter { $0.pathExtension == "safetensors" }.sorted { $0.path < $1.path } } ?? []

    /// Op kinds without a PyTorch fixture, and why; every other `Operation.Kind` must have one, so a
    /// new op (or one the generator silently dropped) fails `fixturesArePresent`.
    static let kindsWithoutFixtures: [KilnGraph.Operation.Kind: String] = [
        .input: "graph leaves: every fixture feeds its inputs through them",
        .constant: "graph leaves fixed at preparation; the fixtures feed everything as inputs",
        .winogradInput: "a piece of conv2d's Winograd decomposition, which torch does not expose; WinogradTests checks the whole against conv2d",
        .winogradWeight: "a piece of conv2d's Winograd decomposition, which torch does not expose; WinogradTests checks the whole against conv2d",
        .winogradOutput: "a piece of conv2d's Winograd decomposition, which torch does not expose; WinogradTests checks the whole against conv2d",
    ]

    @Test func fixturesArePresent() throws {
        #expect(Self.files.count >= 40, "expected the PyTorch fixtures in \(Self.folder?.path ?? "<no Fixtures resource>")")
        let covered = Set(try Self.files.compactMap { try SafeTensorsFile(url: $0).metadata["op"] })
        let expected = Set(KilnGraph.Operation.Kind.allCases.filter { Self.kindsWithoutFixtures[$0] == nil }.map(\.rawValue) + ["linear"])
        #expect(expected.subtracting(covered).isEmpty, "no fixture for \(expected.subtracting(covered).sorted())")
    }

    @Test(arguments: files)
    func matchesPyTorch(_ file: URL) throws {
        let fixture = try SafeTensorsFile(url: file)
        let op = try #require(fixture.metadata["op"])
        let names = try #require(fixture.metadata["inputs"]).split(separator: ",").map(String.init)
        let parameters = try FixtureParameters.decode(try #require(fixture.metadata["params"]))
        let graph = Graph()
        var inputs: [String: HostTensor] = [:]
        var tensors: [Tensor] = []
        for name in names {
            let value = try fixture.tensor(name)
            inputs[name] = value
            tensors.append(graph.input(name, value.shape, dtype: value.dtype == .int32 ? .int32 : .float32))
        }
        let output = try Self.build(op, tensors, parameters, graph)
        let actual = try CPUBackend().run(graph, outputs: [output], inputs: inputs)[0]
        let expected = try fixture.tensor("output")
        try #require(actual.shape == expected.shape, "\(file.lastPathComponent): shape \(actual.shape), torch \(expected.shape)")
        let largest = expected.scalars.reduce(Float(0)) { $1.isFinite ? max($0, abs($1)) : $0 }
        // Non-finite values match exactly (NaN by NaN, each infinity by itself); a mismatch is infinite.
        let error = Verification.compare(actual, expected).absolute
        // Both sides are f64 computations rounded to f32, so they agree to ~1e-7; 1e-5 leaves margin
        // yet fails a tanh GELU standing in for the erf one, which 1e-4 lets through.
        #expect(error <= 1e-5 * max(1, largest), "\(file.lastPathComponent): max |cpu - torch| = \(error), max |torch| = \(largest)")
    }

    /// Builds the fixture's op from its recorded name and parameters.
    static func build(_ op: String, _ x: [Tensor], _ p: FixtureParameters, _ g: Graph) throws -> Tensor {
        switch op {
        case "matmul":
            let hasBias = try p.required(\.hasBias, "has_bias")
            return try g.matmul(x[0], x[1], bias: hasBias ? x[2] : nil,
                                transposeA: try p.required(\.transposeA, "transpose_a"), transposeB: try p.required(\.transposeB, "transpose_b"))
        case "linear":
            return try g.linear(x[0], weight: x[1], bias: try p.required(\.hasBias, "has_bias") ? x[2] : nil)
        case "conv2d":
            let stride = try p.pair(\.stride, "stride"), padding = try p.pair(\.padding, "padding")
            return try g.conv2d(x[0], weight: x[1], bias: try p.required(\.hasBias, "has_bias") ? x[2] : nil, stride: stride, padding: padding)
        case "group_norm":
            return try g.groupNorm(x[0], groups: try p.required(\.groups, "groups"), weight: x[1], bias: x[2],
                                   epsilon: try p.required(\.eps, "eps"), silu: try p.required(\.silu, "silu"))
        case "layer_norm":
            let weight = try p.required(\.hasWeight, "has_weight") ? x[1] : nil
            let bias = try p.required(\.hasBias, "has_bias") ? x[weight == nil ? 1 : 2] : nil
            return try g.layerNorm(x[0], weight: weight, bias: bias, epsilon: try p.required(\.eps, "eps"))
        case "rms_norm":
            return try g.rmsNorm(x[0], weight: try p.required(\.hasWeight, "has_weight") ? x[1] : nil, epsilon: try p.required(\.eps, "eps"))
        case "softmax": return try g.softmax(x[0])
        case "attention":
            return try g.attention(x[0], x[1], x[2], scale: try p.required(\.scale, "scale"), causal: try p.required(\.causal, "causal"),
                                   bias: x.count > 3 ? x[3] : nil)
        case "add": return try g.add(x[0], x[1])
        case "sub": return try g.sub(x[0], x[1])
        case "mul": return try g.mul(x[0], x[1])
        case "scale": return try g.scale(x[0], by: try p.required(\.factor, "factor"))
        case "silu": return try g.silu(x[0])
        case "gelu": return try g.gelu(x[0])
        case "gelu_tanh": return try g.gelu(x[0], approximateTanh: true)
        case "quick_gelu": return try g.quickGelu(x[0])
        case "geglu": return try g.geglu(x[0])
        case "upsample_nearest_2x": return try g.upsampleNearest2x(x[0])
        case "concat": return try g.concat(x, axis: try p.required(\.axis, "axis"))
        case "slice":
            return try g.slice(x[0], axis: try p.required(\.axis, "axis"), start: try p.required(\.start, "start"),
                               length: try p.required(\.length, "length"))
        case "permute": return try g.permute(x[0], try p.required(\.perm, "perm"))
        case "reshape": return try g.reshape(x[0], Shape(try p.required(\.shape, "shape")))
        case "embedding": return try g.embedding(x[0], ids: x[1])
        case "timestep_embedding":
            return try g.timestepEmbedding(x[0], TimestepEmbedding(
                dimension: try p.required(\.dim, "dim"), flipSinToCos: try p.required(\.flipSinToCos, "flip_sin_to_cos"),
                downscaleFrequencyShift: try p.required(\.downscaleFreqShift, "downscale_freq_shift"),
                maxPeriod: try p.required(\.maxPeriod, "max_period"), scale: try p.required(\.scale, "scale")))
        case "modulate": return try g.modulate(x[0], shift: x[1], scale: x[2])
        case "rope": return try g.rope(x[0], cos: x[1], sin: x[2])
        case "exp": return try g.unary(.exp, x[0])
        case "clamp":
            // A null upper bound is none (T5's relu): JSON has no infinity.
            return try g.clamp(x[0], min: try p.required(\.lower, "lower"), max: p.upper ?? .infinity)
        case "cast":
            let types: [String: DType] = ["float16": .float16, "bfloat16": .bfloat16]
            let name = try p.required(\.dtype, "dtype")
            guard let dtype = types[name] else { throw GraphError("fixture", "unknown cast type '\(name)'") }
            return try g.cast(x[0], to: dtype)
        case "guided_step":
            return try g.guidedStep(prediction: x[0], sample: x[1], coefficients: x[2], noise: x.count > 3 ? x[3] : nil)
        default:
            throw GraphError(op, "fixture names an op the test does not know")
        }
    }
}

/// A fixture's `params` JSON. Every field is optional because each op uses a few; `required`
/// turns a missing one into an error instead of a silent default.
struct FixtureParameters: Decodable {
    var transposeA, transposeB, hasBias, hasWeight, silu, causal, flipSinToCos, guided: Bool?
    var stride, padding, perm, shape: [Int]?
    var groups, axis, start, length, dim: Int?
    var eps, scale, factor, downscaleFreqShift, maxPeriod, lower, upper: Float?
    var dtype: String?

    /// Decodes the params JSON, whose keys are snake_case (`transpose_a`).
    static func decode(_ text: String) throws -> FixtureParameters {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(FixtureParameters.self, from: Data(text.utf8))
    }

    func required<Value>(_ field: KeyPath<FixtureParameters, Value?>, _ name: String) throws -> Value {
        guard let value = self[keyPath: field] else { throw GraphError("fixture", "params lack '\(name)'") }
        return value
    }

    func pair(_ field: KeyPath<FixtureParameters, [Int]?>, _ name: String) throws -> (Int, Int) {
        let values = try required(field, name)
        guard values.count == 2 else { throw GraphError("fixture", "'\(name)' must hold two values, got \(values)") }
        return (values[0], values[1])
    }
}


/// Behaviour of the CPU backend that the PyTorch fixtures do not pin down.
@Suite struct CPUBackendTests {
    @Test func outOfRangeIdThrowsNamingIdAndTable() throws {
        let graph = Graph()
        let table = graph.constant("table", [4, 3])
        let y = try graph.embedding(table, ids: graph.input("ids", [3], dtype: .int32))
        let prepared = try CPUBackend().prepare(graph, outputs: [y], constants: ["table": HostTensor(shape: [4, 3], scalars: (0..<12).map(Float.init))])
        for bad: Int32 in [4, -1] {
            do {
                _ = try prepared.run(["ids": HostTensor(shape: [3], integers: [0, bad, 1])])
                Issue.record("id \(bad) was accepted")
            } catch let error as GraphError {
                #expect(error.description.contains("id \(bad)") && error.description.contains("4 rows"), "\(error)")
            }
        }
        let good = try prepared.run(["ids": HostTensor(shape: [3], integers: [3, 0, 3])])[0]
        #expect(good.scalars == [9, 10, 11, 0, 1, 2, 9, 10, 11])
    }

    /// Ids move through slice, concat and permute like any tensor before the gather.
    @Test func integerIdsThroughMovementOps() throws {
        let graph = Graph()
        let ids = graph.input("ids", [2, 3], dtype: .int32)
        let picked = try graph.slice(graph.permute(ids, [1, 0]), axis: 0, start: 1, length: 2)   // [2, 2]: [[1, 4], [2, 5]]
        let joined = try graph.concat([picked, picked], axis: 1)                                    // [2, 4]
        let y = try graph.embedding(graph.input("table", [6, 1]), ids: joined)
        let result = try CPUBackend().run(graph, outputs: [y, joined], inputs: [
            "ids": HostTensor(shape: [2, 3], integers: [0, 1, 2, 3, 4, 5]),
            "table": HostTensor(shape: [6, 1], scalars: [10, 11, 12, 13, 14, 15]),
        ])
        #expect(result[1].integers == [1, 4, 1, 4, 2, 5, 2, 5])
        #expect(result[0].scalars == [11, 14, 11, 14, 12, 15, 12, 15])
    }

    @Test func bindingsAreValidated() throws {
        let graph = Graph()
        let y = try graph.scale(graph.input("x", [2, 2]), by: 2)
        let prepared = try CPUBackend().prepare(graph, outputs: [y], constants: [:])
        #expect(throws: GraphError.self) { try prepared.run([:]) }
        #expect(throws: GraphError.self) { try prepared.run(["x": HostTensor(shape: [4], scalars: [1, 2, 3, 4])]) }
        var lying = HostTensor(shape: [2, 2], scalars: [1, 2, 3, 4])
        lying.scalars.removeLast()
        #expect(throws: GraphError.self) { try prepared.run(["x": lying]) }
        #expect(try prepared.run(["x": HostTensor(shape: [2, 2], scalars: [1, 2, 3, 4])])[0].scalars == [2, 4, 6, 8])
    }

    /// f16 graphs compute in f32 on the CPU: a sum that f16 arithmetic would round stays exact.
    @Test func halfPrecisionGraphsComputeInFloat32() throws {
        let graph = Graph()
        let y = try graph.add(graph.input("a", [1], dtype: .float16), graph.input("b", [1], dtype: .float16))
        let result = try CPUBackend().run(graph, outputs: [y], inputs: [
            "a": HostTensor(shape: [1], scalars: [2048], dtype: .float16), "b": HostTensor(shape: [1], scalars: [1], dtype: .float16),
        ])[0]
        #expect(result.scalars == [2049])
        #expect(result.dtype == .float32)
    }

    @Test func intermediateValuesDoNotChangeRepeatedRuns() throws {
        let graph = Graph()
        let x = graph.input("x", [2, 3])
        let y = try graph.softmax(graph.add(x, graph.scale(x, by: 3)))
        let prepared = try CPUBackend().prepare(graph, outputs: [y, x], constants: [:])
        let input = HostTensor(shape: [2, 3], scalars: [0, 1, 2, -1, 0, 1])
        let first = try prepared.run(["x": input]), second = try prepared.run(["x": input])
        #expect(first == second)
        #expect(first[1] == input)
        #expect(abs(first[0].scalars[0...2].reduce(0, +) - 1) < 1e-6)
    }
}
