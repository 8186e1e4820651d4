import Foundation
import KilnCPU
import KilnGraph

/// The outcome of running one op case on a device against the CPU reference.
public struct VerificationResult: Codable, Sendable {
    public let name: String
    public let operation: String
    public let dtype: String
    public let passed: Bool
    /// max |device - reference| / max(1e-6, max |reference|).
    public let maxRelativeError: Float
    public let maxAbsoluteError: Float
    public let tolerance: Float
    public let seconds: Double
    /// Why the case could not run, if it failed before comparing.
    public let error: String?
}

/// Runs op cases on a backend and compares each output with the CPU reference.
public enum Verification {
    /// Largest absolute and relative difference of two equally shaped outputs.
    public static func compare(_ candidate: HostTensor, _ reference: HostTensor) -> (absolute: Float, relative: Float) {
        guard candidate.shape == reference.shape else { return (.infinity, .infinity) }
        var largest: Float = 0, difference: Float = 0
        for (c, r) in zip(candidate.scalars, reference.scalars) {
            largest = max(largest, abs(r))
            let d = abs(c - r)
            // NaN must fail, so it becomes infinite error rather than vanishing in max().
            difference = max(difference, d.isNaN ? .infinity : d)
        }
        return (difference, difference / max(largest, 1e-6))
    }

    public static func run(_ testCase: OperationCase, on backend: Backend, reference: Backend = CPUBackend()) -> VerificationResult {
        let start = Date()
        do {
            let graph = Graph()
            let (outputs, inputs) = try testCase.build(graph)
            let expected = try reference.run(graph, outputs: outputs, inputs: inputs)
            let actual = try backend.run(graph, outputs: outputs, inputs: inputs)
            var worst: (absolute: Float, relative: Float) = (0, 0)
            for (a, e) in zip(actual, expected) {
                let error = compare(a, e)
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
