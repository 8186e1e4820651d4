import Foundation
import Testing
@testable import KilnSampling

/// `torch.randint(low, high, (n,), generator=g)` recorded by Tests/Fixtures/generate_preference_fixtures.py,
/// interleaved with `torch.randn`, on widths either side of torch's switch to 64-bit draws at 2^28.
struct TorchRandomIntegerTests {
    struct Fixture: Decodable {
        struct Call: Decodable {
            let low: Int64
            let high: Int64
            let value: Int64
            let noiseHead: [Float]
            enum CodingKeys: String, CodingKey {
                case low, high, value
                case noiseHead = "noise_head"
            }
        }
        struct Case: Decodable {
            let seed: String
            let calls: [Call]
            let five: [Int64]
        }
        let cases: [Case]
    }

    @Test func drawsWhatTorchDraws() throws {
        let fixture = try loadFixture("randint", as: Fixture.self)
        #expect(fixture.cases.count == 24)
        for testCase in fixture.cases {
            let generator = TorchGenerator(seed: try #require(UInt64(testCase.seed)))
            for (index, call) in testCase.calls.enumerated() {
                let value = generator.integer(in: call.low..<call.high)
                #expect(value == call.value, "seed \(testCase.seed), width \(call.high - call.low), call \(index)")
                let noise = generator.normal(count: index < 3 ? 64 : 3)
                #expect(Array(noise.prefix(4)) == call.noiseHead, "seed \(testCase.seed), width \(call.high - call.low), noise after call \(index)")
            }
            let width = testCase.calls[0].high - testCase.calls[0].low
            #expect(generator.integers(count: 5, in: 0..<width) == testCase.five, "seed \(testCase.seed), width \(width): five at once")
        }
    }

    @Test func anEmptyRangeDrawsNothing() {
        let generator = TorchGenerator(seed: UInt64(3))
        #expect(generator.integers(count: 4, in: 5..<5).isEmpty)
        #expect(generator.integer(in: 0..<1000) == TorchGenerator(seed: UInt64(3)).integer(in: 0..<1000))
    }
}
