import Foundation
import KilnCPU
import KilnGraph
import KilnVulkan

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

/// One run of the op-case table on a Vulkan backend: which cases, on which kernels.
public struct VerificationPass {
    /// Empty for the device's own kernels, else what the pass forces (`compact tiles`).
    public let label: String
    public let backend: VulkanBackend
    public let cases: [OperationCase]

    /// What `kiln verify` runs for `variant` on `device`. With `.automatic` on a device that runs the
    /// register-blocked kernels, a graph of one small op would take compact tiles everywhere
    /// (`CompactTiles`), so every case runs on the tuned tiles its shape was chosen to reach, and the
    /// matmul, conv2d and attention cases run again on the compact tiles that small graphs take.
    public static func passes(_ cases: [OperationCase], device: VulkanDevice, variant: KernelVariant) -> [VerificationPass] {
        let backend = VulkanBackend(device: device, kernelVariant: variant)
        guard variant == .automatic, backend.usesRegisterBlockedKernels else { return [VerificationPass(label: "", backend: backend, cases: cases)] }
        return [
            VerificationPass(label: "", backend: VulkanBackend(device: device, kernelVariant: .registerBlocked), cases: cases),
            VerificationPass(label: "compact tiles", backend: VulkanBackend(device: device, kernelVariant: .compactRegisterBlocked),
                             cases: cases.filter { OperationCases.hasCompactTiles($0.operation) }),
        ]
    }
}

extension OperationCases {
    /// The op kinds whose register-blocked kernels have a compact tile as well as tuned ones.
    public static func hasCompactTiles(_ operation: KilnGraph.Operation.Kind) -> Bool { [KilnGraph.Operation.Kind.matmul, .conv2d, .attention].contains(operation) }
}

extension VerificationResult {
    /// The same result with `label` (a pass's, such as `compact tiles`) after its name, when there is one.
    public func labelled(_ label: String) -> VerificationResult {
        guard !label.isEmpty else { return self }
        return VerificationResult(
            name: "\(name) [\(label)]", operation: operation, dtype: dtype, passed: passed, maxRelativeError: maxRelativeError,
            maxAbsoluteError: maxAbsoluteError, tolerance: tolerance, seconds: seconds, error: error)
    }
}
