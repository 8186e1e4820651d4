import Kiln
@testable import KilnVerification
@testable import KilnVulkan
import Testing

/// Winograd F(2x2, 3x3) is another way to compute a 3x3 "same" convolution: it must give conv2d's
/// numbers on both backends, and the Vulkan backend must use it exactly where `winogradPays` says.
@Suite struct WinogradTests {
    /// (input, output channels, with bias, addend shape or nil)
    static let shapes: [(input: Shape, outputs: Int, bias: Bool, addend: Bool?)] = [
        ([2, 8, 9, 10], 12, true, true),       // odd height: the last tile row is cropped
        ([1, 16, 6, 7], 8, false, false),      // odd width, a per-image channel bias as addend
        ([2, 4, 2, 2], 5, true, nil),          // one tile per image
        ([1, 20, 13, 1], 4, true, nil),        // one column
    ]

    @Test(arguments: [DType.float32, .float16], shapes.indices)
    func matchesDirectConvolution(_ dtype: DType, _ index: Int) throws {
        let (shape, outputs, hasBias, addendKind) = Self.shapes[index]
        let graph = Graph()
        var b = CaseBuilder(graph: graph, dtype: dtype, random: SeededRandom(name: "winograd_\(index)_\(dtype.shortName)"))
        let x = b.input("x", shape), weight = b.input("w", [outputs, shape[1], 3, 3], scale: 0.3)
        let bias = hasBias ? b.input("bias", [outputs]) : nil
        let addend = addendKind.map { residual in
            b.input("addend", residual ? [shape[0], outputs, shape[2], shape[3]] : [shape[0], outputs, 1, 1])
        }
        let direct = try graph.conv2d(x, weight: weight, bias: bias, addend: addend, padding: (1, 1))
        let winograd = try graph.winogradConvolution(x, weight: weight, bias: bias, addend: addend)
        try Self.expectAgreement(graph, direct: direct, winograd: winograd, inputs: b.inputs, dtype: dtype, "\(shape)")
    }

    /// Reading through the upsampling (the VAE's upsamplers) equals upsampling, then convolving.
    @Test(arguments: [DType.float32, .float16], [Shape([2, 8, 3, 4]), [1, 6, 5, 3]])
    func upsampledInputMatchesUpsampleThenConvolution(_ dtype: DType, _ shape: Shape) throws {
        let graph = Graph()
        var b = CaseBuilder(graph: graph, dtype: dtype, random: SeededRandom(name: "winograd_upsampled_\(shape)_\(dtype.shortName)"))
        let x = b.input("x", shape), weight = b.input("w", [12, shape[1], 3, 3], scale: 0.3), bias = b.input("bias", [12])
        let direct = try graph.conv2d(graph.upsampleNearest2x(x), weight: weight, bias: bias, padding: (1, 1))
        let winograd = try graph.winogradConvolution(x, weight: weight, bias: bias, upsampled: true)
        try Self.expectAgreement(graph, direct: direct, winograd: winograd, inputs: b.inputs, dtype: dtype, "upsampled \(shape)")
    }

    /// Both forms on the CPU reference and on the device. Direct f16 convolutions round once; the
    /// transformed tiles and products add two roundings.
    static func expectAgreement(
        _ graph: Graph, direct: Tensor, winograd: Tensor, inputs: [String: HostTensor], dtype: DType, _ label: String
    ) throws {
        let vulkan = try TestDevice.vulkan()
        try #require(dtype != .float16 || vulkan.device.float16Storage, "device lacks f16 storage")
        let tolerance: Float = dtype == .float16 ? 6e-3 : 2e-5
        for backend in [CPUBackend(), vulkan] as [Backend] {
            let results = try backend.run(graph, outputs: [direct, winograd], inputs: inputs)
            let error = Verification.compare(results[1], results[0])
            #expect(error.relative < tolerance, "\(backend.name) \(dtype.shortName) \(label): Winograd off by \(error.relative)")
        }
        #expect(TestDevice.validationMessages.isEmpty, "\(TestDevice.validationMessages)")
    }

    /// A real-size layer through the backend's own choice (512 channels, 1024 tiles: Winograd on CPU
    /// devices) against the direct kernel on the same device, f16 as models run.
    @Test func backendChoiceMatchesDirectKernelAtFullSize() throws {
        let winograd = try TestDevice.vulkan()
        try #require(winograd.device.float16Storage && winograd.usesWinograd, "Winograd is off on this device")
        let direct = VulkanBackend(device: winograd.device, usesWinograd: false)
        let graph = Graph()
        var b = CaseBuilder(graph: graph, dtype: .float16, random: SeededRandom(name: "winograd_full_size"))
        let x = b.input("x", [1, 512, 64, 64])
        let output = try graph.conv2d(x, weight: b.input("w", [512, 512, 3, 3], scale: 0.015), bias: b.input("b", [512]),
                                      addend: b.input("r", [1, 512, 64, 64]), padding: (1, 1))
        #expect(VulkanBackend.winogradPays(input: x.shape, weight: [512, 512, 3, 3]))
        let results = try [winograd, direct].map { try $0.run(graph, outputs: [output], inputs: b.inputs)[0] }
        let error = Verification.compare(results[0], results[1])
        #expect(error.relative < 6e-3, "Winograd off the direct kernel by \(error.relative)")
        #expect(TestDevice.validationMessages.isEmpty, "\(TestDevice.validationMessages)")
    }

    /// Tiling decisions (the VAE's) must see the transformed tiles, which need more memory than the
    /// direct kernel, or a graph planned to fit would fail the device's limit when prepared.
    @Test func plannedArenaCountsTheTransformedTiles() throws {
        let winograd = try TestDevice.vulkan()
        try #require(winograd.usesWinograd, "Winograd is off on this device")
        let graph = Graph()
        let x = graph.input("x", [1, 512, 64, 64], dtype: .float16)
        let y = try graph.conv2d(x, weight: graph.constant("w", [512, 512, 3, 3], dtype: .float16), bias: nil, padding: (1, 1))
        let direct = MemoryPlan(activationsOf: graph, outputs: [y]).arenaBytes
        #expect(winograd.plannedArenaBytes(graph, outputs: [y]) > 2 * direct)
        #expect(VulkanBackend(device: winograd.device, usesWinograd: false).plannedArenaBytes(graph, outputs: [y]) == direct)
    }

    @Test func rewritesOnlyChosenSameConvolutions() throws {
        let graph = Graph()
        let x = graph.input("x", [1, 8, 6, 6])
        let same = try graph.conv2d(x, weight: graph.constant("a", [8, 8, 3, 3]), bias: nil, padding: (1, 1))
        let strided = try graph.conv2d(same, weight: graph.constant("b", [8, 8, 3, 3]), bias: nil, stride: (2, 2), padding: (1, 1))
        let pointwise = try graph.conv2d(same, weight: graph.constant("c", [8, 8, 1, 1]), bias: nil)
        let unpadded = try graph.conv2d(same, weight: graph.constant("d", [8, 8, 3, 3]), bias: nil)
        let narrow = try graph.conv2d(same, weight: graph.constant("e", [4, 8, 3, 3]), bias: nil, padding: (1, 1))
        // An upsampling read only by the convolution is folded into it; one read twice stays.
        let upsampledOnce = try graph.conv2d(graph.upsampleNearest2x(same), weight: graph.constant("f", [8, 8, 3, 3]), bias: nil, padding: (1, 1))
        let shared = try graph.upsampleNearest2x(narrow)
        let upsampledTwice = try graph.conv2d(shared, weight: graph.constant("g", [8, 4, 3, 3]), bias: nil, padding: (1, 1))
        let outputs = [strided, pointwise, unpadded, upsampledOnce, upsampledTwice, shared]
        let (rewritten, rewrittenOutputs) = graph.winogradConvolutions(outputs: outputs) { _, weight in weight[0] == 8 }
        let operations = rewritten.dependencies(of: rewrittenOutputs).map { rewritten.nodes[$0].operation }
        let names = operations.map(\.name)
        #expect(names.filter { $0 == "winograd_output" }.count == 3, "\(names)")
        #expect(names.filter { $0 == "conv2d" }.count == 4, "\(names)")
        #expect(names.filter { $0 == "upsample_nearest_2x" }.count == 1, "\(names)")
        #expect(operations.filter { $0 == .winogradInput(upsampled: true) }.count == 1, "\(names)")
        #expect(rewrittenOutputs.map(\.shape) == outputs.map(\.shape))
    }

    /// The table's wide cases take the WIDE transforms when aligned, the others (and misaligned tensors) do not.
    @Test(arguments: [("winograd_input_wide", true), ("winograd_output_wide_residual", true), ("winograd_input_upsampled_wide", true),
                      ("winograd_input_upsampled", false), ("winograd_input_odd_size", false),
                      ("winograd_output_bias_channel_addend", false)])
    func wideTransformsWhereTheyApply(_ caseName: String, _ wide: Bool) throws {
        let device = try TestDevice.vulkan().device.info
        try #require(device.shaderInt64)
        let testCase = try #require(OperationCases.standard.first { $0.name == caseName + "_f16" })
        let graph = Graph()
        let (outputs, _) = try testCase.build(graph)
        let node = try #require(graph.dependencies(of: outputs).map { graph.nodes[$0] }.first { $0.operation.kind == testCase.operation })
        for (address, expected) in [(UInt64(1 << 20), wide), (UInt64(1 << 20) + 2, false)] {
            let argument = { (node: Node) in TensorArgument(address: address, shape: node.shape, dtype: node.dtype) }
            let context = KernelContext(node: node, inputs: node.inputs.map { argument(graph.nodes[$0]) }, output: argument(node), device: device)
            let defines = Dictionary(try #require(try KernelTable.dispatches(context).first).defines, uniquingKeysWith: { $1 })
            #expect((defines["WIDE"] == "1") == expected, "\(caseName) at \(address): \(defines)")
        }
    }

    /// The measured rule: deep layers of the VAE decoder, not the U-Net's 32x32 latents or 128-channel layers.
    @Test func winogradPaysWhereMeasured() {
        #expect(VulkanBackend.winogradPays(input: [1, 512, 64, 64], weight: [512, 512, 3, 3]))
        #expect(VulkanBackend.winogradPays(input: [1, 512, 256, 256], weight: [256, 512, 3, 3]))
        #expect(VulkanBackend.winogradPays(input: [1, 256, 256, 256], weight: [256, 256, 3, 3]))
        #expect(!VulkanBackend.winogradPays(input: [1, 128, 512, 512], weight: [128, 128, 3, 3]))
        #expect(!VulkanBackend.winogradPays(input: [2, 320, 64, 64], weight: [320, 320, 3, 3]))      // U-Net 512x512, level 0
        #expect(!VulkanBackend.winogradPays(input: [2, 640, 16, 16], weight: [640, 640, 3, 3]))
        #expect(!VulkanBackend.winogradPays(input: [1, 1024, 1024, 1024], weight: [1024, 1024, 3, 3]))   // 2^32 transformed values
    }
}
