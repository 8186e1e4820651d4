import Kiln
import KilnVerification
import Testing

/// `Graph.fusingAddends` folds residual adds into the producing conv2d/matmul: it rewrites the
/// patterns it should and no others, and the fused kernels agree with the plain decomposition.
@Suite struct AddendFusionTests {
    /// Each table case that builds plain adds, with the adds the Vulkan backend folds away.
    static let plainCases = ["conv2d_resnet_then_adds": 2, "linear_then_residual_add": 1]

    static var addCases: [OperationCase] {
        OperationCases.standard.filter { testCase in
            plainCases.keys.contains { testCase.name.hasPrefix($0 + "_") } || testCase.name.contains("addend")
        }
    }

    @Test func tableCasesTakeTheFusedPath() throws {
        for (name, folded) in Self.plainCases {
            let testCase = try #require(OperationCases.standard.first { $0.name == name + "_f32" })
            let graph = Graph()
            let (outputs, _) = try testCase.build(graph)
            let (fused, fusedOutputs) = graph.fusingAddends(outputs: outputs)
            let operations = fused.dependencies(of: fusedOutputs).map { fused.nodes[$0].operation }
            #expect(Self.adds(in: operations) == 0, "\(name): adds left in \(operations)")
            #expect(Self.addends(in: operations) == folded, "\(name): \(operations)")
        }
    }

    @Test func keepsAddsThatCannotFold() throws {
        let graph = Graph()
        let x = graph.input("x", [2, 4, 6, 6])
        let weight = graph.constant("w", [4, 4, 3, 3])
        let convolve = { try graph.conv2d(x, weight: weight, bias: nil, padding: (1, 1)) }
        // The product is read twice.
        let shared = try convolve()
        let readTwice = try graph.add(graph.add(shared, x), shared)
        // The addend broadcasts over the batch: not a residual nor a per-image channel bias.
        let batchBroadcast = try graph.add(convolve(), graph.input("row", [1, 4, 6, 6]))
        // The product is itself an output.
        let exposed = try convolve()
        let exposedSum = try graph.add(exposed, x)
        // The product broadcasts into a larger sum.
        let widened = try graph.add(graph.matmul(graph.input("a", [1, 5, 3]), graph.input("b", [3, 7])), graph.input("c", [2, 5, 7]))
        let outputs = [readTwice, batchBroadcast, exposed, exposedSum, widened]

        let (fused, fusedOutputs) = graph.fusingAddends(outputs: outputs)
        let operations = fused.dependencies(of: fusedOutputs).map { fused.nodes[$0].operation }
        #expect(Self.adds(in: operations) == 5, "\(operations)")
        #expect(Self.addends(in: operations) == 0)
        #expect(fusedOutputs.map(\.shape) == outputs.map(\.shape))
    }

    /// The fused kernels against the CPU reference, which runs the decomposition (op, then add).
    @Test(arguments: addCases)
    func fusedKernelsMatchDecomposition(_ testCase: OperationCase) throws {
        let backend = try TestDevice.vulkan()
        try #require(testCase.dtype != .float16 || backend.device.float16Storage, "device lacks f16 storage")
        #expect(backend.fusesAddends)
        let result = Verification.run(testCase, on: backend)
        #expect(result.passed, "\(testCase.name): max relative error \(result.maxRelativeError), \(result.error ?? "")")
        #expect(TestDevice.validationMessages.isEmpty, "\(TestDevice.validationMessages)")
    }

    /// The same graphs on the device with and without the rewrite: the plain adds against the fused kernels.
    @Test(arguments: addCases.filter { testCase in plainCases.keys.contains { testCase.name.hasPrefix($0 + "_") } })
    func fusedAndPlainDeviceRunsAgree(_ testCase: OperationCase) throws {
        let fused = try TestDevice.vulkan()
        try #require(testCase.dtype != .float16 || fused.device.float16Storage, "device lacks f16 storage")
        let plain = VulkanBackend(device: fused.device, fusesAddends: false)
        let result = Verification.run(testCase, on: plain, reference: fused)
        #expect(result.passed, "\(testCase.name): max relative error \(result.maxRelativeError), \(result.error ?? "")")
        #expect(TestDevice.validationMessages.isEmpty, "\(TestDevice.validationMessages)")
    }

    static func adds(in operations: [Operation]) -> Int {
        operations.filter { $0 == .binary(.add) }.count
    }

    static func addends(in operations: [Operation]) -> Int {
        operations.filter { operation in
            switch operation {
            case .conv2d(let parameters): parameters.hasAddend
            case .matmul(_, _, _, let hasAddend): hasAddend
            default: false
            }
        }.count
    }
}
