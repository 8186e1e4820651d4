import Foundation
import Kiln
import Testing

/// 8-bit float tensors (FLUX checkpoints are often `float8_e4m3fn`): every bit pattern of
/// `F8_E4M3` and `F8_E5M2` read as torch reads it (Tests/Fixtures/generate_flux_fixtures.py
/// wrote them with torch's float32 values), and exactly representable in f16.
@Suite struct Float8SafeTensorsTests {
    static let file = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("flux/float8.safetensors")

    @Test(arguments: ["e4m3fn", "e5m2"])
    func everyBitPatternMatchesTorch(_ format: String) throws {
        let file = try SafeTensorsFile(url: Self.file)
        let decoded = try file.tensor(format), expected = try file.tensor("\(format).values")
        #expect(decoded.shape == [256])
        #expect(decoded.dtype == .float16)
        for (index, (value, reference)) in zip(decoded.scalars, expected.scalars).enumerated() {
            if reference.isNaN {
                #expect(value.isNaN, "\(format) bits \(index): \(value), expected NaN")
            } else {
                #expect(value == reference, "\(format) bits \(index): \(value), expected \(reference)")
                #expect(Float(Float16(value)) == value, "\(format) bits \(index): \(value) is not exact in f16")
            }
        }
    }
}
