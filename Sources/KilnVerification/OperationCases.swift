import KilnGraph

/// The table. Shapes are deliberately not multiples of any tile size; batch > 1 throughout.
public enum OperationCases {
    public static let all: [OperationCase] = standard + large

    /// Everything except the tensors larger than a storage-buffer binding: the finite cases, then the
    /// non-finite ones (OperationCases+NonFinite.swift), in f32 and f16.
    public static let standard: [OperationCase] = [DType.float32, .float16].flatMap { cases($0) + nonFiniteCases($0) }

    /// A tensor over 128 MiB (lavapipe's maxStorageBufferRange): proves kernels address it whole.
    public static let large: [OperationCase] = [
        OperationCase("add_over_128MiB", .add, .float32) { b in
            let x = b.input("x", [3, 12_000_000])
            return try b.graph.add(x, b.input("bias", [1, 12_000_000]))
        },
    ]

    static func cases(_ t: DType) -> [OperationCase] {
        [
            OperationCase("matmul_67x45x131", .matmul, t) { b in
                try b.graph.matmul(b.input("a", [67, 131]), b.input("b", [131, 45]))
            },
            OperationCase("matmul_batched_transposed_b_bias", .matmul, t) { b in
                try b.graph.matmul(b.input("a", [3, 29, 37]), b.input("w", [19, 37]), bias: b.input("bias", [19]), transposeB: true)
            },
            OperationCase("matmul_batched_transposed_a", .matmul, t) { b in
                try b.graph.matmul(b.input("a", [2, 33, 21]), b.input("b", [2, 33, 17]), transposeA: true)
            },
            // Four-wide loads (matmul.comp's VECTOR_K / VECTOR_N) with every edge: K or N a multiple of 4,
            // rows and columns not multiples of the tiles, batched B.
            OperationCase("matmul_wide_k_batched_bias", .matmul, t) { b in
                try b.graph.matmul(b.input("a", [2, 67, 132]), b.input("b", [132, 45]), bias: b.input("bias", [45]))
            },
            OperationCase("matmul_wide_n", .matmul, t) { b in
                try b.graph.matmul(b.input("a", [2, 35, 37]), b.input("b", [37, 100]))
            },
            OperationCase("matmul_wide_k_and_n_batched_b", .matmul, t) { b in
                try b.graph.matmul(b.input("a", [3, 29, 40]), b.input("b", [3, 40, 116]))
            },
            OperationCase("matmul_transposed_a_wide_n", .matmul, t) { b in
                try b.graph.matmul(b.input("a", [2, 33, 21]), b.input("b", [2, 33, 20]), transposeA: true)
            },
            OperationCase("matmul_four_deep_large_tile", .matmul, t) { b in
                try b.graph.matmul(b.input("a", [3, 70, 24]), b.input("w", [300, 24], scale: 0.3), bias: b.input("bias", [300]), transposeB: true)
            },
            OperationCase("linear_wide_k_odd_outputs", .matmul, t) { b in
                try b.graph.linear(b.input("x", [2, 45, 36]), weight: b.input("w", [53, 36], scale: 0.2), bias: b.input("bias", [53]))
            },
            OperationCase("linear_sd_shape", .matmul, t) { b in
                try b.graph.linear(b.input("x", [2, 77, 64]), weight: b.input("w", [96, 64], scale: 0.1), bias: b.input("bias", [96]))
            },
            OperationCase("conv2d_3x3_pad1", .conv2d, t) { b in
                try b.graph.conv2d(b.input("x", [2, 5, 13, 11]), weight: b.input("w", [7, 5, 3, 3], scale: 0.3),
                                   bias: b.input("bias", [7]), padding: (1, 1))
            },
            OperationCase("conv2d_3x3_stride2", .conv2d, t) { b in
                try b.graph.conv2d(b.input("x", [2, 6, 15, 9]), weight: b.input("w", [10, 6, 3, 3], scale: 0.3),
                                   bias: nil, stride: (2, 2), padding: (1, 1))
            },
            OperationCase("conv2d_3x3_stride2_pad_bottom_right", .conv2d, t) { b in
                try b.graph.conv2d(b.input("x", [2, 4, 11, 8]), weight: b.input("w", [6, 4, 3, 3], scale: 0.3), bias: b.input("bias", [6]),
                                   stride: (2, 2), extraPadding: (1, 1))
            },
            // conv2d.comp's ROW_WINDOW path: row segments of a wide image, whole rows stacked per lane,
            // rows skipped by a vertical stride, a 1x1 kernel; partial column tiles at the end.
            OperationCase("conv2d_3x3_row_window_wide", .conv2d, t) { b in
                try b.graph.conv2d(b.input("x", [2, 5, 6, 64]), weight: b.input("w", [20, 5, 3, 3], scale: 0.3),
                                   bias: b.input("bias", [20]), padding: (1, 1))
            },
            OperationCase("conv2d_3x3_row_window_stacked_rows", .conv2d, t) { b in
                try b.graph.conv2d(b.input("x", [2, 6, 8, 8]), weight: b.input("w", [36, 6, 3, 3], scale: 0.3),
                                   bias: nil, padding: (1, 1))
            },
            OperationCase("conv2d_3x3_row_window_narrow_stacked", .conv2d, t) { b in
                try b.graph.conv2d(b.input("x", [2, 4, 16, 4]), weight: b.input("w", [10, 4, 3, 3], scale: 0.3),
                                   bias: b.input("bias", [10]), padding: (1, 1))
            },
            OperationCase("conv2d_3x3_row_window_stride_y", .conv2d, t) { b in
                try b.graph.conv2d(b.input("x", [2, 3, 22, 16]), weight: b.input("w", [5, 3, 3, 3], scale: 0.3),
                                   bias: b.input("bias", [5]), stride: (2, 1), padding: (1, 1))
            },
            OperationCase("conv2d_1x1_row_window", .conv2d, t) { b in
                try b.graph.conv2d(b.input("x", [3, 7, 4, 32]), weight: b.input("w", [9, 7, 1, 1], scale: 0.3), bias: b.input("bias", [9]))
            },
            OperationCase("conv2d_1x1", .conv2d, t) { b in
                try b.graph.conv2d(b.input("x", [3, 17, 7, 6]), weight: b.input("w", [9, 17, 1, 1], scale: 0.3), bias: b.input("bias", [9]))
            },
            // Many output channels on few pixels (the U-Net's deep levels): narrow column tiles,
            // tall row tiles whose last one is partial, columns of one tile spanning both images.
            OperationCase("conv2d_3x3_many_channels_few_pixels", .conv2d, t) { b in
                try b.graph.conv2d(b.input("x", [2, 19, 4, 3]), weight: b.input("w", [601, 19, 3, 3], scale: 0.2),
                                   bias: b.input("bias", [601]), padding: (1, 1))
            },
            OperationCase("conv2d_1x1_columns_across_images", .conv2d, t) { b in
                try b.graph.conv2d(b.input("x", [2, 23, 5, 7]), weight: b.input("w", [33, 23, 1, 1], scale: 0.3), bias: b.input("bias", [33]))
            },
            OperationCase("conv2d_3x3_stride2_deep", .conv2d, t) { b in
                try b.graph.conv2d(b.input("x", [2, 12, 9, 7]), weight: b.input("w", [100, 12, 3, 3], scale: 0.3),
                                   bias: b.input("bias", [100]), stride: (2, 2), padding: (1, 1))
            },
            OperationCase("conv2d_4x2_stride1x2", .conv2d, t) { b in
                try b.graph.conv2d(b.input("x", [1, 3, 10, 12]), weight: b.input("w", [5, 3, 4, 2], scale: 0.3),
                                   bias: b.input("bias", [5]), stride: (1, 2), padding: (0, 1))
            },
            // Fused addends: a residual or a per-image channel bias summed in the producing kernel, on the
            // row-window, general and matmul store paths; the "then_add" cases are plain graphs that the
            // Vulkan backend's Graph.fusingAddends rewrites (AddendFusionTests checks that it does).
            OperationCase("conv2d_addend_residual_row_window", .conv2d, t) { b in
                try b.graph.conv2d(b.input("x", [2, 5, 6, 64]), weight: b.input("w", [20, 5, 3, 3], scale: 0.3),
                                   bias: b.input("bias", [20]), addend: b.input("residual", [2, 20, 6, 64]), padding: (1, 1))
            },
            OperationCase("conv2d_addend_channel_bias", .conv2d, t) { b in
                try b.graph.conv2d(b.input("x", [2, 6, 7, 5]), weight: b.input("w", [11, 6, 3, 3], scale: 0.3),
                                   bias: nil, addend: b.input("time", [2, 11, 1, 1]), padding: (1, 1))
            },
            OperationCase("conv2d_resnet_then_adds", .conv2d, t) { b in
                let x = b.input("x", [2, 8, 8, 8])
                let time = try b.graph.reshape(b.input("time", [2, 8]), [2, 8, 1, 1])
                let first = try b.graph.add(b.graph.conv2d(x, weight: b.input("w1", [8, 8, 3, 3], scale: 0.2), bias: b.input("b1", [8]),
                                                           padding: (1, 1)), time)
                let second = try b.graph.conv2d(b.graph.unary(.silu, first), weight: b.input("w2", [8, 8, 3, 3], scale: 0.2),
                                                bias: b.input("b2", [8]), padding: (1, 1))
                return try b.graph.add(x, second)
            },
            OperationCase("matmul_addend_wide_store", .matmul, t) { b in
                try b.graph.matmul(b.input("a", [2, 35, 36]), b.input("w", [44, 36], scale: 0.3), bias: b.input("bias", [44]),
                                   addend: b.input("residual", [2, 35, 44]), transposeB: true)
            },
            OperationCase("matmul_addend_odd_columns", .matmul, t) { b in
                try b.graph.matmul(b.input("a", [29, 37]), b.input("b", [37, 19]), addend: b.input("residual", [29, 19]))
            },
            OperationCase("linear_then_residual_add", .matmul, t) { b in
                let x = b.input("x", [2, 21, 32])
                let projected = try b.graph.linear(x, weight: b.input("w", [32, 32], scale: 0.2), bias: b.input("bias", [32]))
                return try b.graph.add(x, projected)
            },
            // Winograd F(2x2, 3x3): each transform alone (odd sizes: cropped edge tiles), then the whole
            // convolution through the batched GEMMs, with bias and a residual.
            OperationCase("winograd_input_odd_size", .winogradInput, t) { b in
                try b.graph.winogradInput(b.input("x", [2, 6, 7, 9]))
            },
            OperationCase("winograd_input_upsampled", .winogradInput, t) { b in
                try b.graph.winogradInput(b.input("x", [2, 6, 3, 5]), upsampled: true)
            },
            OperationCase("winograd_input_upsampled_wide", .winogradInput, t) { b in
                try b.graph.winogradInput(b.input("x", [2, 8, 3, 8]), upsampled: true)
            },
            OperationCase("winograd_weight", .winogradWeight, t) { b in
                try b.graph.winogradWeight(b.input("w", [10, 6, 3, 3]))
            },
            OperationCase("winograd_output_bias_channel_addend", .winogradOutput, t) { b in
                try b.graph.winogradOutput(b.input("m", [16, 2 * 4 * 5, 7]), batch: 2, height: 7, width: 9,
                                           bias: b.input("bias", [7]), addend: b.input("time", [2, 7, 1, 1]))
            },
            // The WIDE transforms: rows of whole groups of four tiles, four channels at a time.
            OperationCase("winograd_input_wide", .winogradInput, t) { b in
                try b.graph.winogradInput(b.input("x", [2, 8, 5, 16]))
            },
            OperationCase("winograd_output_wide_residual", .winogradOutput, t) { b in
                try b.graph.winogradOutput(b.input("m", [16, 2 * 3 * 8, 12]), batch: 2, height: 5, width: 16,
                                           bias: b.input("bias", [12]), addend: b.input("residual", [2, 12, 5, 16]))
            },
            OperationCase("conv2d_winograd_wide_channel_bias", .winogradOutput, t) { b in
                try b.graph.winogradConvolution(b.input("x", [2, 8, 6, 8]), weight: b.input("w", [12, 8, 3, 3], scale: 0.3),
                                                bias: nil, addend: b.input("time", [2, 12, 1, 1]))
            },
            OperationCase("conv2d_winograd_residual", .winogradOutput, t) { b in
                try b.graph.winogradConvolution(b.input("x", [2, 12, 9, 10]), weight: b.input("w", [20, 12, 3, 3], scale: 0.3),
                                                bias: b.input("bias", [20]), addend: b.input("residual", [2, 20, 9, 10]))
            },
            // The sampling step after the U-Net: a guided batch with noise, and an unguided one without.
            OperationCase("guided_step_with_noise", .guidedStep, t, tolerance: 1e-5) { b in
                try b.graph.guidedStep(prediction: b.input("prediction", [4, 4, 5, 6]), sample: b.input("sample", [2, 4, 5, 6], storage: .float32),
                                       coefficients: b.input("coefficients", [4], storage: .float32),
                                       noise: b.input("noise", [2, 4, 5, 6], storage: .float32))
            },
            OperationCase("guided_step_unguided", .guidedStep, t, tolerance: 1e-5) { b in
                try b.graph.guidedStep(prediction: b.input("prediction", [3, 4, 7, 3]), sample: b.input("sample", [3, 4, 7, 3], storage: .float32),
                                       coefficients: b.input("coefficients", [4], storage: .float32))
            },
            OperationCase("group_norm_silu", .groupNorm, t) { b in
                try b.graph.groupNorm(b.input("x", [2, 12, 7, 5], offset: 0.5), groups: 3, weight: b.input("w", [12]),
                                      bias: b.input("bias", [12]), epsilon: 1e-5, silu: true)
            },
            OperationCase("group_norm_per_channel", .groupNorm, t) { b in
                try b.graph.groupNorm(b.input("x", [3, 8, 33]), groups: 8, weight: b.input("w", [8]), bias: b.input("bias", [8]), epsilon: 1e-6)
            },
            OperationCase("layer_norm", .layerNorm, t) { b in
                try b.graph.layerNorm(b.input("x", [2, 9, 75], offset: 1), weight: b.input("w", [75]), bias: b.input("bias", [75]), epsilon: 1e-5)
            },
            OperationCase("layer_norm_no_affine", .layerNorm, t) { b in
                try b.graph.layerNorm(b.input("x", [5, 130]), weight: nil, bias: nil, epsilon: 1e-6)
            },
            // normalization.comp's WIDE_ROWS: rows of whole 8-byte words.
            OperationCase("group_norm_silu_wide_rows", .groupNorm, t) { b in
                try b.graph.groupNorm(b.input("x", [2, 12, 6, 10], offset: 0.5), groups: 4, weight: b.input("w", [12]),
                                      bias: b.input("bias", [12]), epsilon: 1e-5, silu: true)
            },
            OperationCase("layer_norm_wide_rows", .layerNorm, t) { b in
                try b.graph.layerNorm(b.input("x", [2, 9, 76], offset: 1), weight: b.input("w", [76]), bias: b.input("bias", [76]), epsilon: 1e-5)
            },
            OperationCase("layer_norm_wide_rows_no_affine", .layerNorm, t) { b in
                try b.graph.layerNorm(b.input("x", [5, 132]), weight: nil, bias: nil, epsilon: 1e-6)
            },
            OperationCase("rms_norm", .rmsNorm, t) { b in
                try b.graph.rmsNorm(b.input("x", [2, 3, 7, 40]), weight: b.input("w", [40]), epsilon: 1e-6)
            },
            OperationCase("softmax", .softmax, t) { b in
                try b.graph.softmax(b.input("x", [2, 3, 11, 77], scale: 8))
            },
            OperationCase("attention_self", .attention, t) { b in
                try b.graph.attention(b.input("q", [2, 3, 37, 40]), b.input("k", [2, 3, 37, 40]), b.input("v", [2, 3, 37, 40]))
            },
            OperationCase("attention_cross", .attention, t) { b in
                try b.graph.attention(b.input("q", [2, 2, 29, 64]), b.input("k", [2, 2, 77, 64]), b.input("v", [2, 2, 77, 24]))
            },
            OperationCase("attention_causal", .attention, t) { b in
                try b.graph.attention(b.input("q", [1, 4, 23, 80]), b.input("k", [1, 4, 23, 80]), b.input("v", [1, 4, 23, 80]), causal: true)
            },
            // T5: unscaled scores plus a relative position bias shared by the batch; odd lengths and head dims.
            OperationCase("attention_bias_shared", .attention, t) { b in
                try b.graph.attention(b.input("q", [2, 3, 19, 24]), b.input("k", [2, 3, 45, 24]), b.input("v", [2, 3, 45, 20]),
                                      scale: 1, bias: b.input("bias", [1, 3, 19, 45], scale: 3))
            },
            OperationCase("attention_bias_batched_causal", .attention, t) { b in
                try b.graph.attention(b.input("q", [2, 2, 37, 40]), b.input("k", [2, 2, 37, 40]), b.input("v", [2, 2, 37, 40]),
                                      causal: true, bias: b.input("bias", [2, 2, 37, 37], scale: 2))
            },
            // Tensors as linear layers lay them out, [B, L, H * D]: no head permutes around the kernel.
            OperationCase("attention_token_major", .attention, t) { b in
                try b.graph.multiHeadAttention(b.input("q", [2, 29, 120]), b.input("k", [2, 41, 120]), b.input("v", [2, 41, 72]), heads: 3)
            },
            OperationCase("attention_token_major_bias_causal", .attention, t) { b in
                try b.graph.multiHeadAttention(b.input("q", [2, 23, 64]), b.input("k", [2, 23, 64]), b.input("v", [2, 23, 64]), heads: 4,
                                               causal: true, bias: b.input("bias", [1, 4, 23, 23], scale: 2))
            },
            // Head dims that are not multiples of 4 keep attention.comp's scalar Q.K loop (not VECTOR_D).
            OperationCase("attention_head_dim_not_multiple_of_4", .attention, t) { b in
                try b.graph.multiHeadAttention(b.input("q", [2, 13, 54]), b.input("k", [2, 21, 54]), b.input("v", [2, 21, 48]), heads: 3)
            },
            OperationCase("add_broadcast", .add, t) { b in
                try b.graph.add(b.input("a", [2, 3, 5, 7]), b.input("b", [3, 1, 7]))
            },
            OperationCase("sub_same_shape", .sub, t) { b in
                try b.graph.sub(b.input("a", [4, 25]), b.input("b", [4, 25]))
            },
            OperationCase("mul_broadcast_both", .mul, t) { b in
                try b.graph.mul(b.input("a", [2, 1, 9]), b.input("b", [5, 1]))
            },
            OperationCase("scale", .scale, t) { b in try b.graph.scale(b.input("x", [3, 1001]), by: 0.18215) },
            OperationCase("silu", .silu, t) { b in try b.graph.silu(b.input("x", [2, 515], scale: 4)) },
            OperationCase("gelu", .gelu, t) { b in try b.graph.gelu(b.input("x", [2, 513], scale: 4)) },
            OperationCase("gelu_tanh", .geluTanh, t) { b in try b.graph.gelu(b.input("x", [4, 129], scale: 4), approximateTanh: true) },
            OperationCase("quick_gelu", .quickGelu, t) { b in try b.graph.quickGelu(b.input("x", [3, 333], scale: 4)) },
            OperationCase("exp", .exp, t) { b in try b.graph.unary(.exp, b.input("x", [2, 301], scale: 2)) },
            OperationCase("clamp", .clamp, t) { b in try b.graph.clamp(b.input("x", [5, 77], scale: 3), min: -1.5, max: 2) },
            OperationCase("geglu", .geglu, t) { b in try b.graph.geglu(b.input("x", [2, 7, 90])) },
            OperationCase("upsample_nearest_2x", .upsampleNearest2x, t) { b in
                try b.graph.upsampleNearest2x(b.input("x", [2, 3, 5, 7]))
            },
            OperationCase("concat_channels", .concat, t) { b in
                try b.graph.concat([b.input("a", [2, 3, 4, 5]), b.input("b", [2, 6, 4, 5]), b.input("c", [2, 1, 4, 5])], axis: 1)
            },
            OperationCase("slice_chunk", .slice, t) { b in
                try b.graph.chunk(b.input("x", [2, 9, 14]), 2, axis: 2)[1]
            },
            OperationCase("permute_heads", .permute, t) { b in
                try b.graph.permute(b.input("x", [2, 11, 3, 8]), [0, 2, 1, 3])
            },
            OperationCase("reshape_then_permute", .permute, t) { b in
                let x = try b.graph.reshape(b.input("x", [2, 15, 24]), [2, 15, 3, 8])
                return try b.graph.permute(x, [0, 2, 3, 1])
            },
            OperationCase("embedding", .embedding, t) { b in
                try b.graph.embedding(b.input("table", [50, 24]), ids: b.ids("ids", [2, 13], below: 50))
            },
            OperationCase("timestep_embedding", .timestepEmbedding, t, tolerance: t == .float16 ? 4e-3 : 5e-4) { b in
                b.inputs["t"] = HostTensor(shape: [4], scalars: [0, 1, 500.5, 999], dtype: t).roundedToStorage()
                let times = b.graph.input("t", [4], dtype: t)
                return try b.graph.timestepEmbedding(times, TimestepEmbedding(dimension: 33, flipSinToCos: true, downscaleFrequencyShift: 1))
            },
            OperationCase("modulate", .modulate, t) { b in
                try b.graph.modulate(b.input("x", [2, 9, 30]), shift: b.input("shift", [2, 30]), scale: b.input("scale", [2, 30]))
            },
            OperationCase("rope", .rope, t) { b in
                try b.graph.rope(b.input("x", [2, 3, 7, 16]), cos: b.input("cos", [7, 16]), sin: b.input("sin", [7, 16]))
            },
            OperationCase("cast_round_trip", .cast, t) { b in
                let other: DType = t == .float16 ? .float32 : .float16
                return try b.graph.cast(b.graph.cast(b.input("x", [3, 37]), to: other), to: t)
            },
        ]
    }
}
