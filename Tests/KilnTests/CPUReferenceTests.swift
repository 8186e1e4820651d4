import Foundation
import Kiln
import Testing

/// The CPU reference against PyTorch: Tests/Fixtures/generate_op_fixtures.py records each op's
/// inputs and torch's output (computed in f64) in Fixtures/ops/<case>.safetensors.
@Suite struct CPUReferenceTests {
    static let folder = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("ops")
    static let files: [URL] = ((try? FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)) ?? [])
        .filter { $0.pathExtension == "safetensors" }.sorted { $0.path < $1.path }

    @Test func fixturesArePresent() {
        #expect(Self.files.count >= 60, "expected the committed PyTorch fixtures in \(Self.folder.path)")
    }

    @Test(arguments: files)
    func matchesPyTorch(_ file: URL) throws {
        let fixture = try SafeTensorsFile(url: file)
        let op = try #require(fixture.metadata["op"])
        let names = try #require(fixture.metadata["inputs"]).split(separator: ",").map(String.init)
        let parameterText = try #require(fixture.metadata["params"])
        let parameters = try #require(try JSONSerialization.jsonObject(with: Data(parameterText.utf8)) as? [String: Any])
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
        #expect(actual.shape == expected.shape)
        let error = Verification.compare(actual, expected)
        // timestep_embedding's angles reach ~2000 rad, where f32 rounding of the argument alone is ~1e-4.
        let tolerance: Float = op == "timestep_embedding" ? 2e-4 : 1e-5
        #expect(error.absolute <= tolerance * max(1, expected.scalars.map(abs).max() ?? 0), "\(file.lastPathComponent): \(error)")
    }

    /// Builds the fixture's op from its recorded name and parameters.
    static func build(_ op: String, _ x: [Tensor], _ p: [String: Any], _ g: Graph) throws -> Tensor {
        func flag(_ key: String) -> Bool { p[key] as? Bool ?? false }
        func number(_ key: String) -> Float { Float(p[key] as? Double ?? Double(p[key] as? Int ?? 0)) }
        func integer(_ key: String) -> Int { p[key] as? Int ?? 0 }
        func pair(_ key: String) -> (Int, Int) { let v = p[key] as? [Int] ?? [0, 0]; return (v[0], v[1]) }
        switch op {
        case "matmul":
            return try g.matmul(x[0], x[1], bias: flag("has_bias") ? x[2] : nil, transposeA: flag("transpose_a"), transposeB: flag("transpose_b"))
        case "linear": return try g.linear(x[0], weight: x[1], bias: flag("has_bias") ? x[2] : nil)
        case "conv2d":
            return try g.conv2d(x[0], weight: x[1], bias: flag("has_bias") ? x[2] : nil, stride: pair("stride"), padding: pair("padding"))
        case "group_norm":
            return try g.groupNorm(x[0], groups: integer("groups"), weight: x[1], bias: x[2], epsilon: number("eps"), silu: flag("silu"))
        case "layer_norm":
            let weight = flag("has_weight") ? x[1] : nil
            return try g.layerNorm(x[0], weight: weight, bias: flag("has_bias") ? x[weight == nil ? 1 : 2] : nil, epsilon: number("eps"))
        case "rms_norm": return try g.rmsNorm(x[0], weight: flag("has_weight") ? x[1] : nil, epsilon: number("eps"))
        case "softmax": return try g.softmax(x[0])
        case "attention": return try g.attention(x[0], x[1], x[2], scale: number("scale"), causal: flag("causal"))
        case "add": return try g.add(x[0], x[1])
        case "sub": return try g.sub(x[0], x[1])
        case "mul": return try g.mul(x[0], x[1])
        case "scale": return try g.scale(x[0], by: number("factor"))
        case "silu", "gelu", "gelu_tanh", "quick_gelu":
            return try g.unary(try #require(UnaryOperator(rawValue: op)), x[0])
        case "geglu": return try g.geglu(x[0])
        case "upsample_nearest_2x": return try g.upsampleNearest2x(x[0])
        case "concat": return try g.concat(x, axis: integer("axis"))
        case "slice": return try g.slice(x[0], axis: integer("axis"), start: integer("start"), length: integer("length"))
        case "permute": return try g.permute(x[0], p["perm"] as? [Int] ?? [])
        case "reshape": return try g.reshape(x[0], Shape(p["shape"] as? [Int] ?? []))
        case "embedding": return try g.embedding(x[0], ids: x[1])
        case "timestep_embedding":
            return try g.timestepEmbedding(x[0], TimestepEmbedding(
                dimension: integer("dim"), flipSinToCos: flag("flip_sin_to_cos"), downscaleFrequencyShift: number("downscale_freq_shift"),
                maxPeriod: number("max_period"), scale: number("scale")))
        case "modulate": return try g.modulate(x[0], shift: x[1], scale: x[2])
        case "rope": return try g.rope(x[0], cos: x[1], sin: x[2])
        default:
            throw GraphError(op, "fixture names an op the test does not know")
        }
    }
}
