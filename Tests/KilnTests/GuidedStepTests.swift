import Kiln
@testable import KilnVerification
import Testing

/// `Graph.guidedStep` is one pass for what basic ops spell out: halves by slices, guidance by
/// sub/mul/add, the step by muls and adds with the coefficients broadcast. Both run on each backend.
@Suite struct GuidedStepTests {
    /// With `nonFinite`, NaN and infinities in both halves (one place infinite in both: u + g (inf - inf)
    /// is NaN), in the sample and in the noise: the fused pass spreads them exactly as the plain ops.
    @Test(arguments: [DType.float32, .float16], [(true, false), (false, false), (true, true), (false, true)])
    func fusedPassMatchesDecomposition(_ dtype: DType, _ variant: (withNoise: Bool, nonFinite: Bool)) throws {
        let (withNoise, nonFinite) = variant
        let vulkan = try TestDevice.vulkan()
        try #require(dtype != .float16 || vulkan.device.float16Storage, "device lacks f16 storage")
        let graph = Graph()
        let seed = "guided_step_\(dtype.shortName)_\(withNoise)" + (nonFinite ? "_non_finite" : "")
        var b = CaseBuilder(graph: graph, dtype: dtype, random: SeededRandom(name: seed))
        let special: (prediction: [Int: Float], sample: [Int: Float], noise: [Int: Float]) = nonFinite
            ? ([0: .nan, 7: .infinity, 247: .infinity, 250: -.infinity], [2: -.infinity, 9: .nan], [3: .infinity, 11: .nan]) : ([:], [:], [:])
        let prediction = b.input("prediction", [4, 4, 6, 5], replacing: special.prediction)
        let sample = b.input("sample", [2, 4, 6, 5], storage: .float32, replacing: special.sample)
        let coefficients = b.input("coefficients", [4], storage: .float32)
        let noise = withNoise ? b.input("noise", [2, 4, 6, 5], storage: .float32, replacing: special.noise) : nil
        let fused = try graph.guidedStep(prediction: prediction, sample: sample, coefficients: coefficients, noise: noise)

        let wide = dtype == .float32 ? prediction : try graph.cast(prediction, to: .float32)
        let (unconditional, conditional) = (try graph.slice(wide, axis: 0, start: 0, length: 2), try graph.slice(wide, axis: 0, start: 2, length: 2))
        let coefficient = { (index: Int) in try graph.slice(coefficients, axis: 0, start: index, length: 1) }
        let guided = try graph.add(unconditional, graph.mul(coefficient(0), graph.sub(conditional, unconditional)))
        var plain = try graph.add(graph.mul(sample, coefficient(1)), graph.mul(guided, coefficient(2)))
        if let noise { plain = try graph.add(plain, graph.mul(noise, coefficient(3))) }

        for backend in [CPUBackend(), vulkan] as [Backend] {
            let results = try backend.run(graph, outputs: [fused, plain], inputs: b.inputs)
            let error = Verification.compare(results[0], results[1])
            #expect(error.relative < 1e-6, "\(backend.name) \(dtype.shortName): fused and plain differ by \(error.relative)")
        }
        #expect(TestDevice.validationMessages.isEmpty, "\(TestDevice.validationMessages)")
    }

    @Test func rejectsMismatchedShapesAndTypes() {
        let graph = Graph()
        let sample = graph.input("sample", [2, 4, 8, 8]), coefficients = graph.input("coefficients", [4])
        #expect(throws: GraphError.self) {
            try graph.guidedStep(prediction: graph.input("p", [3, 4, 8, 8]), sample: sample, coefficients: coefficients)
        }
        #expect(throws: GraphError.self) {
            try graph.guidedStep(prediction: graph.input("q", [4, 4, 8, 8]), sample: graph.input("s16", [2, 4, 8, 8], dtype: .float16),
                                 coefficients: coefficients)
        }
        #expect(throws: GraphError.self) {
            try graph.guidedStep(prediction: graph.input("r", [4, 4, 8, 8]), sample: sample, coefficients: graph.input("k", [3]))
        }
    }
}
