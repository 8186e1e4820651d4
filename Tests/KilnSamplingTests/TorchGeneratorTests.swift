import Foundation
import Testing
@testable import KilnSampling

private struct RandnFixture: Decodable {
    struct Call: Decodable {
        let shape: [Int]
        let bits: [UInt32]?
        let fnv1a64: String?
        let head: [UInt32]?
        let tail: [UInt32]?
    }
    struct Case: Decodable {
        let seed: String
        let calls: [Call]
    }
    let cases: [Case]
}

private func fnv1a64(_ values: [Float]) -> String {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for value in values {
        var pattern = value.bitPattern.littleEndian
        for _ in 0..<4 {
            hash ^= UInt64(pattern & 0xff)
            hash = hash &* 0x100_0000_01b3
            pattern >>= 8
        }
    }
    let digits = String(hash, radix: 16)
    return String(repeating: "0", count: 16 - digits.count) + digits
}

private func check(fixture name: String, variant: TorchGenerator.Variant) throws {
    let fixture = try loadFixture(name, as: RandnFixture.self)
    #expect(fixture.cases.count >= 12)
    for testCase in fixture.cases {
        let seed = try #require(UInt64(testCase.seed))
        let generator = TorchGenerator(seed: seed, variant: variant)
        for (callIndex, call) in testCase.calls.enumerated() {
            let values = generator.normal(shape: call.shape).scalars
            let context = "seed \(seed) call \(callIndex) shape \(call.shape)"
            if let bits = call.bits {
                #expect(values.map(\.bitPattern) == bits, "\(context)")
            } else {
                #expect(fnv1a64(values) == call.fnv1a64, "\(context)")
                #expect(values.prefix(8).map(\.bitPattern) == call.head, "\(context)")
                #expect(values.suffix(8).map(\.bitPattern) == call.tail, "\(context)")
            }
        }
    }
}

@Test func randnMatchesTorchBitForBit() throws {
    try check(fixture: "randn", variant: .x86Vectorized)
}

#if os(Linux)
// The portable kernel calls libm, so it can only match where torch ran against the same glibc.
@Test func randnScalarLibmKernelMatchesTorch() throws {
    try check(fixture: "randn_scalar_libm", variant: .scalarLibm)
}
#endif

@Test func seedsAboveThirtyTwoBitsKeepOnlyTheLowWord() {
    let wide = TorchGenerator(seed: UInt64(1 << 32) + 5).normal(count: 40)
    let narrow = TorchGenerator(seed: UInt64(5)).normal(count: 40)
    #expect(wide == narrow)
}
