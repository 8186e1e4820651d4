import Foundation
import Kiln
import KilnVerification
import Testing

/// A user's report: a FLUX model whose weights held a NaN wrote a speckled but finite image on
/// Vulkan and exited 0, while the CPU reference (and torch) gave NaN. In float16 FLUX clips the
/// text stream of its double blocks and the joint stream of its single blocks to +-65504, and
/// GLSL's clamp returned a bound for NaN. The tiny schnell transformer with one weight set to NaN
/// must give a non-finite output on Vulkan exactly where the CPU reference does.
@Suite(.serialized) struct FluxNonFiniteWeightTests {
    /// Weights whose NaN passes through FLUX's float16 clipping on the way to the output: the text
    /// MLP of the last double block (clipped there) and a single block's output projection.
    @Test(arguments: ["transformer_blocks.1.ff_context.net.2.weight", "single_transformer_blocks.0.proj_out.weight"])
    func nanWeightGivesNonFiniteOutputOnEveryBackend(_ weight: String) throws {
        let variant = "schnell"
        let model = FluxTransformer2DModel(configuration: try FluxTransformerTests.configuration(variant))
        let source = PoisonedTensorSource(base: try FluxTransformerTests.source(variant, singleFile: false), name: weight, index: 5, value: .nan)
        let records = try FluxTransformerTests.records(variant)
        let vulkan = try FluxTransformerTests.vulkan.get()
        for dtype in [DType.float32, .float16] {
            let run = { (backend: Backend) in
                try FluxTransformerTests.run(model, source: source, records: records, backend: backend, dtype: dtype, guidance: false).output
            }
            let reference = try run(CPUBackend()), device = try run(vulkan)
            let label = "\(weight) \(dtype.shortName)"
            let nonFinite = reference.scalars.filter { !$0.isFinite }.count
            #expect(nonFinite > 0, "\(label): the NaN weight never reached the CPU reference's output")
            #expect(device.scalars.filter { !$0.isFinite }.count == nonFinite, "\(label): \(nonFinite) non-finite values on the CPU")
            // Non-finite where the reference is (an infinity may be NaN after a different summation order), finite elsewhere.
            let error = Verification.compare(device, reference, nonFinite: .infinityMayBecomeNaN)
            #expect(error.relative <= (dtype == .float16 ? 1e-2 : 1e-3), "\(label): Vulkan against CPU \(error.relative)")
        }
        #expect(vulkan.device.instance.validationMessages.all.isEmpty, "validation messages")
    }

    /// The unpoisoned model stays finite: the NaN above comes from the weight.
    @Test func cleanWeightsGiveFiniteOutput() throws {
        let variant = "schnell"
        let model = FluxTransformer2DModel(configuration: try FluxTransformerTests.configuration(variant))
        let output = try FluxTransformerTests.run(model, source: try FluxTransformerTests.source(variant, singleFile: false),
                                                  records: try FluxTransformerTests.records(variant), backend: try FluxTransformerTests.vulkan.get(),
                                                  dtype: .float16, guidance: false).output
        #expect(output.scalars.allSatisfy { $0.isFinite })
    }
}

/// A tensor source that serves `base`'s tensors with one value of one tensor replaced.
struct PoisonedTensorSource: TensorSource {
    let base: TensorSource
    let name: String
    let index: Int
    let value: Float

    func shape(of name: String) -> Shape? { base.shape(of: name) }
    var names: [String] { base.names }
    var origin: String { "\(base.origin) with \(name)[\(index)] = \(value)" }

    func load(_ requested: String) throws -> HostTensor {
        var tensor = try base.load(requested)
        if requested == name { tensor.scalars[index] = value }
        return tensor
    }
}
