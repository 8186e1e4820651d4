import Kiln
import KilnVerification
import Testing

/// `Verification.compare` on non-finite values: a NaN or an infinity must be matched, never
/// averaged away, and a finite reference value is never matched by a non-finite one.
@Suite struct VerificationComparisonTests {
    static func tensor(_ values: [Float]) -> HostTensor { HostTensor(shape: [values.count], scalars: values) }

    @Test func exactMatchingOfNonFiniteValues() {
        let reference = Self.tensor([.nan, .infinity, -.infinity, 2])
        #expect(Verification.compare(Self.tensor([.nan, .infinity, -.infinity, 2]), reference) == (0, 0))
        for candidate: [Float] in [[1, .infinity, -.infinity, 2], [.nan, .nan, -.infinity, 2], [.nan, -.infinity, -.infinity, 2],
                                   [.nan, .infinity, 65504, 2], [.nan, .infinity, -.infinity, .nan], [.nan, .infinity, -.infinity, .infinity]] {
            #expect(Verification.compare(Self.tensor(candidate), reference).relative == .infinity, "\(candidate)")
        }
    }

    @Test func infinityMayBecomeNaNWhereTheCaseSaysSo() {
        let reference = Self.tensor([.nan, .infinity, -.infinity, 2])
        #expect(Verification.compare(Self.tensor([.nan, .nan, .infinity, 2]), reference, nonFinite: .infinityMayBecomeNaN) == (0, 0))
        #expect(Verification.compare(Self.tensor([.infinity, .nan, .nan, 2]), reference, nonFinite: .infinityMayBecomeNaN).relative == .infinity)
        #expect(Verification.compare(Self.tensor([.nan, 3e38, .nan, 2]), reference, nonFinite: .infinityMayBecomeNaN).relative == .infinity)
    }

    /// Errors are relative to the largest finite reference magnitude, not to an infinity.
    @Test func relativeErrorIgnoresNonFiniteMagnitudes() {
        let error = Verification.compare(Self.tensor([.infinity, 4.5]), Self.tensor([.infinity, 4]))
        #expect(error.absolute == 0.5)
        #expect(error.relative == 0.125)
    }
}
