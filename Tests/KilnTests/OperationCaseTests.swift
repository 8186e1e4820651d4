import Kiln
import KilnVerification
import Testing

/// The shared op-case table on the Vulkan backend, compared with the CPU reference.
@Suite struct OperationCaseTests {
    /// On the tuned tiles the cases' shapes were chosen to reach (a one-op graph would take compact
    /// tiles under `.automatic` on a CPU device; `compactKernelsMatchReference` covers those).
    @Test(arguments: OperationCases.standard)
    func vulkanMatchesReference(_ testCase: OperationCase) throws {
        let backend = try TestDevice.tuned()
        try #require(testCase.dtype != .float16 || backend.device.float16Storage, "device lacks f16 storage")
        let result = Verification.run(testCase, on: backend)
        #expect(result.error == nil, "\(result.error ?? "")")
        #expect(result.passed, "\(testCase.name): max relative error \(result.maxRelativeError) > \(testCase.tolerance)")
        #expect(TestDevice.validationMessages.isEmpty, "\(TestDevice.validationMessages)")
    }

    /// The shared-memory (GPU) variants of the heavy kernels, run on whatever device is here.
    @Test(arguments: OperationCases.standard.filter { [.matmul, .conv2d, .attention].contains($0.operation) })
    func sharedMemoryKernelsMatchReference(_ testCase: OperationCase) throws {
        let backend = VulkanBackend(device: try TestDevice.vulkan().device, kernelVariant: .sharedMemoryTiles)
        try #require(testCase.dtype != .float16 || backend.device.float16Storage, "device lacks f16 storage")
        let result = Verification.run(testCase, on: backend)
        #expect(result.passed, "\(testCase.name): max relative error \(result.maxRelativeError), \(result.error ?? "")")
        #expect(TestDevice.validationMessages.isEmpty, "\(TestDevice.validationMessages)")
    }

    /// The compact register tiles that small graphs take on CPU devices (`CompactTiles`).
    @Test(arguments: OperationCases.standard.filter { OperationCases.hasCompactTiles($0.operation) })
    func compactKernelsMatchReference(_ testCase: OperationCase) throws {
        let backend = VulkanBackend(device: try TestDevice.vulkan().device, kernelVariant: .compactRegisterBlocked)
        try #require(backend.usesRegisterBlockedKernels, "device lacks the register-blocked kernels")
        try #require(testCase.dtype != .float16 || backend.device.float16Storage, "device lacks f16 storage")
        let result = Verification.run(testCase, on: backend)
        #expect(result.passed, "\(testCase.name): max relative error \(result.maxRelativeError), \(result.error ?? "")")
        #expect(TestDevice.validationMessages.isEmpty, "\(TestDevice.validationMessages)")
    }

    /// 3 x 12M f32 = 144 MB, past lavapipe's 128 MiB maxStorageBufferRange.
    @Test func tensorLargerThanStorageBufferRange() throws {
        let backend = try TestDevice.vulkan()
        let testCase = try #require(OperationCases.large.first)
        let graph = Graph()
        let (outputs, _) = try testCase.build(graph)
        let bytes = UInt64(outputs[0].shape.elementCount * 4)
        #expect(bytes > backend.device.info.maxStorageBufferRange || backend.device.info.maxStorageBufferRange > 1 << 30)
        let result = Verification.run(testCase, on: backend)
        #expect(result.passed, "max relative error \(result.maxRelativeError), \(result.error ?? "")")
        #expect(TestDevice.validationMessages.isEmpty, "\(TestDevice.validationMessages)")
    }

    /// Every op kind has a case (derived from `Operation.Kind.allCases`, not a hand-written list),
    /// but those `OperationCoverage.kindsWithoutCases` names with its reason.
    @Test func tableCoversEveryOperation() {
        let covered = Set(OperationCases.standard.map(\.operation))
        let missing = OperationCoverage.kindsNeedingCases.filter { !covered.contains($0) }
        #expect(missing.isEmpty, "no case for \(missing.map(\.rawValue))")
        #expect(OperationCases.all.count >= 20)
    }

    /// Each case's graph holds a node of the kind it claims, so coverage is not a matter of labels.
    @Test func casesExerciseTheirOperation() throws {
        for testCase in OperationCases.standard {
            let graph = Graph()
            let (outputs, _) = try testCase.build(graph)
            let kinds = Set(graph.dependencies(of: outputs).map { graph.nodes[$0].operation.kind })
            #expect(kinds.contains(testCase.operation), "\(testCase.name) claims \(testCase.operation.rawValue) but builds \(kinds.map(\.rawValue).sorted())")
        }
    }

    /// The non-finite cases reach every kind the table covers.
    @Test func nonFiniteCasesCoverEveryFamily() throws {
        var kinds: Set<Operation.Kind> = []
        for testCase in OperationCases.standard {
            let graph = Graph()
            let (_, inputs) = try testCase.build(graph)
            if inputs.values.contains(where: { $0.scalars.contains { !$0.isFinite } }) { kinds.insert(testCase.operation) }
        }
        let missing = OperationCoverage.kindsNeedingCases.filter { !kinds.contains($0) }
        #expect(missing.isEmpty, "no non-finite case for \(missing.map(\.rawValue))")
    }
}
