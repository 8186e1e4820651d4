import Foundation
import KilnCPU
import KilnGraph

/// The outcome of running one op case on a device against the CPU reference.
public struct VerificationResult: Codable, Sendable {
    public let name: String
    public let operation: String
    public let dtype: String
    public let passed: Bool
    /// max |device - reference| / max(1e-6, max |reference|) over finite reference values; infinite
    /// where a non-finite value is not matched (`Verification.compare`).
    public let maxRelativeError: Float
    public let maxAbsoluteError: Float
    public let tolerance: Float
    public let seconds: Double
    /// Why the case could not run, if it failed before comparing.
    public let error: String?
}

/// Runs op cases on a backend and compares each output with the CPU reference.
public enum Verification {
    /// Largest absolute and relative difference of two equally shaped outputs, over the reference's
    /// finite values (relative to its largest finite magnitude). A non-finite value on either side
    /// that `nonFinite` does not accept makes both errors infinite: a device NaN or infinity where
    /// the reference is finite, or a finite value (or the wrong infinity) where it is not.
    public static func compare(
        _ candidate: HostTensor, _ reference: HostTensor, nonFinite: NonFiniteMatching = .exact
    ) -> (absolute: Float, relative: Float) {
        guard candidate.shape == reference.shape else { return (.infinity, .infinity) }
        var largest: Float = 0, difference: Float = 0
        for (c, r) in zip(candidate.scalars, reference.scalars) {
            if r.isFinite {
                largest = max(largest, abs(r))
                let d = abs(c - r)
                difference = max(difference, d.isFinite ? d : .infinity)
            } else if !matches(c, nonFiniteReference: r, nonFinite) {
                difference = .infinity
            }
        }
        return (difference, difference / max(largest, 1e-6))
    }

    /// Whether device value `c` stands for the non-finite reference value `r`.
    static func matches(_ c: Float, nonFiniteReference r: Float, _ rule: NonFiniteMatching) -> Bool {
        if r.isNaN { return c.isNaN }
        switch rule {
        case .exact: return c == r
        case .infinityMayBecomeNaN: return !c.isFinite
        }
    }

    /// The reference output as a device storing `dtype` would hold it at best: rounded to f16 (a
    /// finite value past 65504 becomes an infinity, as torch's `.half()` makes it) or bf16.
    static func stored(_ reference: HostTensor, as dtype: DType) -> HostTensor {
        guard dtype != .int32, reference.dtype != .int32 else { return reference }
        return HostTensor(shape: reference.shape, scalars: reference.scalars, dtype: dtype).roundedToStorage()
    }

    public static func run(_ testCase: OperationCase, on backend: Backend, reference: Backend = CPUBackend()) -> VerificationResult {
        let start = Date()
        do {
            let graph = Graph()
            let (outputs, inputs) = try testCase.build(graph)
            let expected = try reference.run(graph, outputs: outputs, inputs: inputs)
            let actual = try backend.run(graph, outputs: outputs, inputs: inputs)
            var worst: (absolute: Float, relative: Float) = (0, 0)
            for (index, (a, e)) in zip(actual, expected).enumerated() {
                let error = compare(a, stored(e, as: outputs[index].dtype), nonFinite: testCase.nonFinite)
                worst = (max(worst.absolute, error.absolute), max(worst.relative, error.relative))
            }
            return VerificationResult(
                name: testCase.name, operation: testCase.operation.rawValue, dtype: testCase.dtype.shortName,
                passed: worst.relative <= testCase.tolerance, maxRelativeError: worst.relative, maxAbsoluteError: worst.absolute,
                tolerance: testCase.tolerance, seconds: Date().timeIntervalSince(start), error: nil)
        } catch {
            return VerificationResult(
                name: testCase.name, operation: testCase.operation.rawValue, dtype: testCase.dtype.shortName, passed: false,
                maxRelativeError: .infinity, maxAbsoluteError: .infinity, tolerance: testCase.tolerance,
                seconds: Date().timeIntervalSince(start), error: "\(error)")
        }
    }
}
