@testable import KilnVulkan
import Kiln
import KilnVerification
import Testing

/// The op cases written for the wide-load paths (matmul.comp's VECTOR_K / VECTOR_N / WIDE_STORE,
/// conv2d.comp's ROW_WINDOW, normalization.comp's WIDE_ROWS, attention.comp's VECTOR_D) must really take them on the register kernels, or their agreement with
/// the CPU proves nothing about those paths; a tensor whose address is not 8-byte aligned must not.
@Suite struct WideLoadSelectionTests {
    static let expected: [String: (vectorK: Bool, vectorN: Bool, store: Bool)] = [
        "matmul_wide_k_batched_bias": (true, false, false),
        "matmul_wide_n": (false, true, true),
        "matmul_wide_k_and_n_batched_b": (true, true, true),
        "matmul_transposed_a_wide_n": (false, true, true),
        "linear_wide_k_odd_outputs": (true, false, false),
        "matmul_four_deep_large_tile": (true, false, true),
        "linear_sd_shape": (true, false, true),
        "matmul_67x45x131": (false, false, false),
        "matmul_addend_wide_store": (true, false, true),
        "matmul_addend_odd_columns": (false, false, false),
    ]

    /// conv2d row-window cases: SEGMENT and TILE_N (LANE_ROWS = TILE_N / SEGMENT).
    static let rowWindows: [String: (segment: Int, columnsPerLane: Int)] = [
        "conv2d_3x3_row_window_wide": (32, 32),
        "conv2d_3x3_row_window_stacked_rows": (8, 16),
        "conv2d_3x3_row_window_narrow_stacked": (4, 16),
        "conv2d_3x3_row_window_stride_y": (16, 16),
        "conv2d_1x1_row_window": (32, 32),
        "conv2d_addend_residual_row_window": (32, 32),
    ]

    func defines(_ caseName: String, operation: String = "matmul", address: UInt64) throws -> [String: String] {
        let device = try TestDevice.vulkan().device.info
        try #require(device.shaderInt64 && device.subgroupBroadcastAndArithmetic && [4, 8].contains(device.subgroupSize))
        let testCase = try #require(OperationCases.standard.first { $0.name == caseName + "_f16" })
        let graph = Graph()
        let (outputs, _) = try testCase.build(graph)
        let node = try #require(graph.dependencies(of: outputs).map { graph.nodes[$0] }.first { $0.operation.name == operation })
        let argument = { (node: Node) in TensorArgument(address: address, shape: node.shape, dtype: node.dtype) }
        var context = KernelContext(node: node, inputs: node.inputs.map { argument(graph.nodes[$0]) }, output: argument(node), device: device)
        context.variant = .registerBlocked
        let dispatch = try #require(try KernelTable.dispatches(context).first)
        return Dictionary(dispatch.defines, uniquingKeysWith: { $1 })
    }

    @Test(arguments: Array(expected.keys))
    func alignedTensorsTakeTheWidePaths(_ caseName: String) throws {
        let defines = try defines(caseName, address: 1 << 20)
        let expected = try #require(Self.expected[caseName])
        #expect(defines["VECTOR_K", default: "0"] == (expected.vectorK ? "1" : "0"), "\(caseName): \(defines)")
        #expect(defines["VECTOR_N", default: "0"] == (expected.vectorN ? "1" : "0"), "\(caseName): \(defines)")
        #expect(defines["WIDE_STORE", default: "0"] == (expected.store ? "1" : "0"), "\(caseName): \(defines)")
    }

    /// The case meant to cover large four-deep tiles, with partial tiles on both edges, gets one.
    @Test func fourDeepCaseCoversALargeTile() throws {
        let defines = try defines("matmul_four_deep_large_tile", address: 1 << 20)
        #expect(defines["TILE_M"] == "32" && defines["TILE_N"] == "40", "\(defines)")
    }

    @Test(arguments: Array(rowWindows.keys))
    func sameWidthConvolutionsReadRowWindows(_ caseName: String) throws {
        let defines = try defines(caseName, operation: "conv2d", address: 1 << 20)
        let expected = try #require(Self.rowWindows[caseName])
        #expect(defines["ROW_WINDOW"] == "1", "\(caseName): \(defines)")
        #expect(defines["SEGMENT"] == "\(expected.segment)" && defines["TILE_N"] == "\(expected.columnsPerLane)", "\(caseName): \(defines)")
    }

    @Test func otherConvolutionsKeepTheGeneralLoop() throws {
        for caseName in ["conv2d_3x3_pad1", "conv2d_3x3_stride2", "conv2d_1x1", "conv2d_4x2_stride1x2", "conv2d_3x3_many_channels_few_pixels"] {
            let defines = try defines(caseName, operation: "conv2d", address: 1 << 20)
            #expect(defines["ROW_WINDOW"] == nil, "\(caseName): \(defines)")
        }
    }

    @Test(arguments: [("group_norm_silu_wide_rows", "group_norm", true), ("layer_norm_wide_rows", "layer_norm", true),
                      ("layer_norm_wide_rows_no_affine", "layer_norm", true), ("group_norm_silu", "group_norm", false),
                      ("layer_norm_no_affine", "layer_norm", false)])
    func normalizationRowsOfWholeWordsAreReadWide(_ caseName: String, operation: String, wide: Bool) throws {
        let defines = try defines(caseName, operation: operation, address: 1 << 20)
        #expect((defines["WIDE_ROWS"] == "1") == wide, "\(caseName): \(defines)")
    }

    @Test(arguments: [("attention_self", true), ("attention_bias_shared", true), ("attention_token_major", true),
                      ("attention_token_major_bias_causal", true), ("attention_head_dim_not_multiple_of_4", false)])
    func attentionReadsFourHeadDimsAtATime(_ caseName: String, wide: Bool) throws {
        let defines = try defines(caseName, operation: "attention", address: 1 << 20)
        #expect((defines["VECTOR_D"] == "1") == wide, "\(caseName): \(defines)")
    }

    @Test func misalignedTensorsTakeScalarLoads() throws {
        let matmul = try defines("matmul_wide_k_and_n_batched_b", address: (1 << 20) + 4)
        #expect(matmul["KILN_WIDE_LOADS"] == nil, "\(matmul)")
        let convolution = try defines("conv2d_3x3_row_window_wide", operation: "conv2d", address: (1 << 20) + 4)
        #expect(convolution["KILN_WIDE_LOADS"] == nil, "\(convolution)")
    }
}
