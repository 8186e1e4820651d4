import KilnGraph

/// Cases whose inputs hold NaN, +inf and -inf at chosen places (and finite values past f16's range):
/// no kernel may launder a non-finite value into a finite one, or make one where the reference has
/// none. The reference follows torch (`torch.clamp(nan) = nan`, `torch.clamp(inf, -65504, 65504) =
/// 65504`, `x.half()` of 70000 = inf, zero padding times an infinite weight = NaN). Positions are
/// picked to reach the kernels' edges: the pixel a padded tap's clamped load reads, the key a past-
/// the-end key's clamped load reads, keys a causal mask hides, broadcast operands.
extension OperationCases {
    static func nonFiniteCases(_ t: DType) -> [OperationCase] {
        let nan = Float.nan, inf = Float.infinity
        /// The flat index of `coordinates` in `shape`.
        @Sendable func at(_ shape: Shape, _ coordinates: Int...) -> Int { zip(coordinates, shape.strides).reduce(0) { $0 + $1.0 * $1.1 } }
        /// NaN, +inf, -inf at the first three indices, then more at `rest`.
        @Sendable func poisoned(_ rest: [Int: Float] = [:]) -> [Int: Float] { [0: nan, 1: inf, 2: -inf].merging(rest) { $1 } }
        let wholeRowMasked = Dictionary(uniqueKeysWithValues: (0..<45).map { (at([1, 3, 19, 45], 0, 0, 2, $0), -inf) })

        var cases: [OperationCase] = [
            // Elementwise, on the scalar and the VECTOR4 paths (a count that is a multiple of four).
            OperationCase("clamp_non_finite", .clamp, t) { b in
                try b.graph.clamp(b.input("x", [5, 77], scale: 3, replacing: poisoned([200: nan, 384: inf])), min: -1.5, max: 2)
            },
            OperationCase("clamp_non_finite_vector4", .clamp, t) { b in
                try b.graph.clamp(b.input("x", [4, 64], scale: 3, replacing: poisoned([255: nan, 130: -inf])), min: -1.5, max: 2)
            },
            // FLUX's and T5's float16 clipping: an overflow becomes +-65504, NaN stays NaN.
            OperationCase("clamp_half_range", .clamp, t) { b in
                try b.graph.clamp(b.input("x", [3, 41], scale: 1000, replacing: poisoned([3: 70000, 4: -70000, 5: 65519])),
                                  min: -65504, max: 65504)
            },
            OperationCase("clamp_relu_non_finite_vector4", .clamp, t) { b in
                try b.graph.clamp(b.input("x", [2, 48], replacing: poisoned([47: nan])), min: 0, max: .infinity)
            },
            OperationCase("silu_non_finite", .silu, t) { b in
                try b.graph.silu(b.input("x", [2, 51], scale: 4, replacing: poisoned([3: 100, 4: -100])))
            },
            OperationCase("silu_non_finite_vector4", .silu, t) { b in
                try b.graph.silu(b.input("x", [2, 64], scale: 4, replacing: poisoned([3: 100, 4: -100, 127: nan])))
            },
            OperationCase("gelu_non_finite", .gelu, t) { b in
                try b.graph.gelu(b.input("x", [2, 51], scale: 4, replacing: poisoned([3: 100, 4: -100])))
            },
            OperationCase("gelu_tanh_non_finite", .geluTanh, t) { b in
                try b.graph.gelu(b.input("x", [2, 51], scale: 4, replacing: poisoned([3: 100, 4: -100])), approximateTanh: true)
            },
            OperationCase("gelu_tanh_non_finite_vector4", .geluTanh, t) { b in
                try b.graph.gelu(b.input("x", [4, 32], scale: 4, replacing: poisoned([3: 100, 4: -100, 127: -inf])), approximateTanh: true)
            },
            OperationCase("quick_gelu_non_finite", .quickGelu, t) { b in
                try b.graph.quickGelu(b.input("x", [3, 33], scale: 4, replacing: poisoned([3: 100, 4: -100])))
            },
            // exp(12) = 162755 is past f16's range: an f16 output stores +inf.
            OperationCase("exp_non_finite", .exp, t) { b in
                try b.graph.unary(.exp, b.input("x", [2, 61], scale: 2, replacing: poisoned([3: 100, 4: -100, 5: 12])))
            },
            OperationCase("add_broadcast_non_finite", .add, t) { b in
                try b.graph.add(b.input("a", [2, 3, 5, 7], replacing: poisoned()), b.input("b", [3, 1, 7], replacing: [4: nan, 8: -inf]))
            },
            // inf - inf = NaN where both operands are infinite.
            OperationCase("sub_non_finite_vector4", .sub, t) { b in
                try b.graph.sub(b.input("a", [4, 25], replacing: poisoned([5: inf])), b.input("b", [4, 25], replacing: [1: inf, 5: -inf, 7: nan]))
            },
            OperationCase("mul_broadcast_non_finite", .mul, t) { b in
                try b.graph.mul(b.input("a", [2, 1, 9], replacing: poisoned()), b.input("b", [5, 1], replacing: [3: inf]))
            },
            OperationCase("scale_non_finite", .scale, t) { b in try b.graph.scale(b.input("x", [3, 101], replacing: poisoned()), by: 0.18215) },
            // f16 storage of a finite f32 past 65504: +-inf, as torch's `.half()`; f32 keeps the value.
            OperationCase("scale_overflows_half", .scale, t) { b in
                try b.graph.scale(b.input("x", [3, 21], replacing: [0: 40000, 1: -40000, 2: 30000, 3: nan]), by: 2)
            },
            OperationCase("scale_overflows_half_vector4", .scale, t) { b in
                try b.graph.scale(b.input("x", [2, 32], replacing: [0: 40000, 1: -40000, 2: 30000, 63: nan]), by: 2)
            },
            OperationCase("geglu_non_finite", .geglu, t) { b in
                try b.graph.geglu(b.input("x", [2, 7, 90], replacing: [at([2, 7, 90], 0, 0, 0): nan, at([2, 7, 90], 0, 1, 50): inf,
                                                                       at([2, 7, 90], 1, 3, 46): -inf, at([2, 7, 90], 1, 6, 2): inf]))
            },
            OperationCase("modulate_non_finite", .modulate, t) { b in
                try b.graph.modulate(b.input("x", [2, 9, 30], replacing: [0: -inf, 100: nan]), shift: b.input("shift", [2, 30], replacing: [3: inf]),
                                     scale: b.input("scale", [2, 30], replacing: [34: nan]))
            },
            OperationCase("rope_non_finite", .rope, t) { b in
                try b.graph.rope(b.input("x", [2, 3, 7, 16], replacing: [0: inf, 17: nan, 300: -inf]), cos: b.input("cos", [7, 16]),
                                 sin: b.input("sin", [7, 16], replacing: [40: inf]))
            },
            OperationCase("timestep_embedding_non_finite", .timestepEmbedding, t) { b in
                b.inputs["t"] = HostTensor(shape: [4], scalars: [0, inf, nan, 999], dtype: t).roundedToStorage()
                return try b.graph.timestepEmbedding(b.graph.input("t", [4], dtype: t),
                                                     TimestepEmbedding(dimension: 33, flipSinToCos: true, downscaleFrequencyShift: 1))
            },
            // The sampling step: NaN in one half, infinities in both halves at one place (u + g (inf - inf) = NaN), in the
            // sample and in the noise.
            OperationCase("guided_step_non_finite", .guidedStep, t, tolerance: 1e-5) { b in
                try b.graph.guidedStep(prediction: b.input("prediction", [4, 4, 5, 6], replacing: [0: nan, 5: inf, 245: inf, 241: -inf]),
                                       sample: b.input("sample", [2, 4, 5, 6], storage: .float32, replacing: [2: -inf, 9: nan]),
                                       coefficients: b.input("coefficients", [4], storage: .float32),
                                       noise: b.input("noise", [2, 4, 5, 6], storage: .float32, replacing: [3: inf, 11: nan]))
            },
            OperationCase("upsample_nearest_2x_non_finite", .upsampleNearest2x, t) { b in
                try b.graph.upsampleNearest2x(b.input("x", [2, 3, 5, 7], replacing: poisoned([104: nan])))
            },
            OperationCase("concat_non_finite", .concat, t) { b in
                try b.graph.concat([b.input("a", [2, 3, 4, 5], replacing: poisoned()), b.input("b", [2, 1, 4, 5], replacing: [19: nan, 39: -inf])], axis: 1)
            },
            OperationCase("slice_non_finite", .slice, t) { b in
                try b.graph.chunk(b.input("x", [2, 9, 14], replacing: [7: nan, 13: inf, 251: -inf]), 2, axis: 2)[1]
            },
            OperationCase("permute_non_finite", .permute, t) { b in
                try b.graph.permute(b.input("x", [2, 11, 3, 8], replacing: poisoned([527: nan])), [0, 2, 1, 3])
            },
            OperationCase("embedding_non_finite", .embedding, t) { b in
                b.inputs["ids"] = HostTensor(shape: [2, 5], integers: [0, 7, 3, 7, 49, 1, 0, 2, 8, 49])
                return try b.graph.embedding(b.input("table", [50, 24], replacing: poisoned([at([50, 24], 7, 3): nan, at([50, 24], 49, 23): -inf])),
                                             ids: b.graph.input("ids", [2, 5], dtype: .int32))
            },

            // Matmul on the scalar-K path, the wide (VECTOR_K, transposed B, WIDE_STORE, fused addend) and VECTOR_N paths.
            // One infinity per dot product gives an infinity of a definite sign, whatever the order of the sum.
            OperationCase("matmul_non_finite", .matmul, t) { b in
                try b.graph.matmul(b.input("a", [67, 131], replacing: [at([67, 131], 0, 5): nan, at([67, 131], 10, 7): inf, at([67, 131], 20, 8): -inf]),
                                   b.input("b", [131, 45], replacing: [at([131, 45], 3, 2): -inf, at([131, 45], 50, 44): nan]))
            },
            OperationCase("matmul_non_finite_addend_wide_store", .matmul, t) { b in
                try b.graph.matmul(b.input("a", [2, 35, 36], replacing: [0: nan, at([2, 35, 36], 1, 3, 1): inf]),
                                   b.input("w", [44, 36], scale: 0.3, replacing: [at([44, 36], 5, 2): -inf]),
                                   bias: b.input("bias", [44], replacing: [7: nan]),
                                   addend: b.input("residual", [2, 35, 44], replacing: [100: inf, 101: -inf, 1000: nan]), transposeB: true)
            },
            OperationCase("matmul_non_finite_wide_n", .matmul, t) { b in
                try b.graph.matmul(b.input("a", [2, 35, 37], replacing: [at([2, 35, 37], 1, 34, 36): -inf]),
                                   b.input("b", [37, 100], replacing: [0: inf, 150: nan]))
            },
            OperationCase("matmul_non_finite_transposed_a", .matmul, t) { b in
                try b.graph.matmul(b.input("a", [2, 33, 21], replacing: poisoned()), b.input("b", [2, 33, 20], replacing: [at([2, 33, 20], 1, 32, 19): inf]),
                                   transposeA: true)
            },
            // Products past 65504: an f16 output stores +-inf (scalar and wide stores).
            OperationCase("matmul_overflows_half", .matmul, t) { b in
                try b.graph.matmul(b.input("a", [29, 37], replacing: [0: 3000]), b.input("b", [37, 19], replacing: [0: 30, 1: -30]))
            },
            OperationCase("matmul_overflows_half_wide_store", .matmul, t) { b in
                try b.graph.matmul(b.input("a", [2, 35, 36], replacing: [0: 3000]), b.input("w", [44, 36], replacing: [0: 30, 36: -30]),
                                   transposeB: true)
            },

            // Convolutions: a NaN at the pixel the register path's padded taps load (channel 0's first pixel),
            // infinities inside and at the far corner, on the general, row-window, 1x1 and strided paths. An
            // infinite weight meets the zero padding: 0 * inf = NaN at the border, as torch computes it.
            OperationCase("conv2d_3x3_non_finite_padding", .conv2d, t) { b in
                let shape: Shape = [2, 5, 13, 11]
                return try b.graph.conv2d(b.input("x", shape, replacing: [at(shape, 0, 0, 0, 0): nan, at(shape, 1, 2, 6, 5): inf,
                                                                          at(shape, 0, 1, 12, 10): -inf, at(shape, 1, 0, 0, 0): nan]),
                                          weight: b.input("w", [7, 5, 3, 3], scale: 0.3), bias: b.input("bias", [7]), padding: (1, 1))
            },
            OperationCase("conv2d_3x3_infinite_weight_meets_padding", .conv2d, t) { b in
                try b.graph.conv2d(b.input("x", [2, 4, 9, 7]), weight: b.input("w", [6, 4, 3, 3], scale: 0.3, replacing: [at([6, 4, 3, 3], 2, 1, 2, 1): -inf]),
                                   bias: b.input("bias", [6], replacing: [4: nan]), padding: (1, 1))
            },
            OperationCase("conv2d_3x3_row_window_non_finite", .conv2d, t) { b in
                let shape: Shape = [2, 5, 6, 64]
                return try b.graph.conv2d(b.input("x", shape, replacing: [at(shape, 0, 0, 0, 0): nan, at(shape, 0, 3, 0, 63): inf,
                                                                          at(shape, 1, 1, 5, 0): -inf, at(shape, 1, 4, 3, 31): inf]),
                                          weight: b.input("w", [20, 5, 3, 3], scale: 0.3), bias: b.input("bias", [20]),
                                          addend: b.input("residual", [2, 20, 6, 64], replacing: [77: nan, 4000: -inf]), padding: (1, 1))
            },
            OperationCase("conv2d_3x3_row_window_stacked_non_finite", .conv2d, t) { b in
                let shape: Shape = [2, 6, 8, 8]
                return try b.graph.conv2d(b.input("x", shape, replacing: [at(shape, 0, 0, 0, 0): inf, at(shape, 1, 5, 7, 7): nan, at(shape, 1, 2, 0, 4): -inf]),
                                          weight: b.input("w", [36, 6, 3, 3], scale: 0.3), bias: nil, padding: (1, 1))
            },
            OperationCase("conv2d_3x3_stride2_non_finite", .conv2d, t) { b in
                let shape: Shape = [2, 4, 11, 8]
                return try b.graph.conv2d(b.input("x", shape, replacing: [at(shape, 0, 0, 0, 0): nan, at(shape, 1, 3, 10, 7): inf]),
                                          weight: b.input("w", [6, 4, 3, 3], scale: 0.3, replacing: [at([6, 4, 3, 3], 5, 3, 2, 2): inf]),
                                          bias: b.input("bias", [6]), stride: (2, 2), extraPadding: (1, 1))
            },
            OperationCase("conv2d_1x1_non_finite", .conv2d, t) { b in
                try b.graph.conv2d(b.input("x", [3, 17, 7, 6], replacing: poisoned()), weight: b.input("w", [9, 17, 1, 1], scale: 0.3),
                                   bias: b.input("bias", [9]))
            },
            OperationCase("conv2d_3x3_many_channels_non_finite", .conv2d, t) { b in
                try b.graph.conv2d(b.input("x", [2, 19, 4, 3], replacing: poisoned()), weight: b.input("w", [601, 19, 3, 3], scale: 0.2),
                                   bias: b.input("bias", [601]), padding: (1, 1))
            },
            // Winograd: the transforms add and subtract a patch's pixels, so an infinity can meet its own
            // negation (inf - inf = NaN) and a non-finite pixel reaches the whole 2x2 output tiles around it.
            // The reference runs the same transforms, so the pattern is exact here.
            OperationCase("winograd_input_non_finite", .winogradInput, t) { b in
                try b.graph.winogradInput(b.input("x", [2, 6, 7, 9], replacing: poisoned([at([2, 6, 7, 9], 1, 5, 6, 8): nan])))
            },
            OperationCase("winograd_input_wide_non_finite", .winogradInput, t) { b in
                try b.graph.winogradInput(b.input("x", [2, 8, 5, 16], replacing: poisoned([at([2, 8, 5, 16], 1, 7, 4, 15): inf])))
            },
            OperationCase("winograd_input_upsampled_wide_non_finite", .winogradInput, t) { b in
                try b.graph.winogradInput(b.input("x", [2, 8, 3, 8], replacing: poisoned([at([2, 8, 3, 8], 1, 7, 2, 7): nan])), upsampled: true)
            },
            OperationCase("winograd_weight_non_finite", .winogradWeight, t) { b in
                try b.graph.winogradWeight(b.input("w", [10, 6, 3, 3], replacing: poisoned()))
            },
            OperationCase("winograd_output_wide_non_finite", .winogradOutput, t) { b in
                try b.graph.winogradOutput(b.input("m", [16, 2 * 3 * 8, 12], replacing: poisoned([5000: nan])), batch: 2, height: 5, width: 16,
                                           bias: b.input("bias", [12], replacing: [11: inf]),
                                           addend: b.input("residual", [2, 12, 5, 16], replacing: [300: -inf]))
            },
            OperationCase("conv2d_winograd_non_finite", .winogradOutput, t) { b in
                let shape: Shape = [2, 12, 9, 10]
                return try b.graph.winogradConvolution(
                    b.input("x", shape, replacing: [at(shape, 0, 0, 0, 0): nan, at(shape, 1, 4, 5, 5): inf, at(shape, 1, 11, 8, 9): -inf]),
                    weight: b.input("w", [20, 12, 3, 3], scale: 0.3), bias: b.input("bias", [20]),
                    addend: b.input("residual", [2, 20, 9, 10], replacing: [17: nan]))
            },

            // Normalisations: one non-finite value makes its whole row or group NaN (the mean is non-finite);
            // RMS norm of a row holding an infinity is 0 elsewhere and NaN there (x * rsqrt(inf)), as torch.
            OperationCase("group_norm_silu_non_finite", .groupNorm, t) { b in
                let shape: Shape = [2, 12, 7, 5]
                return try b.graph.groupNorm(b.input("x", shape, offset: 0.5, replacing: [at(shape, 0, 0, 0, 0): nan, at(shape, 0, 4, 3, 2): inf,
                                                                                          at(shape, 1, 9, 6, 4): -inf]),
                                             groups: 3, weight: b.input("w", [12], replacing: [11: inf]), bias: b.input("bias", [12], replacing: [6: nan]),
                                             epsilon: 1e-5, silu: true)
            },
            OperationCase("group_norm_silu_wide_rows_non_finite", .groupNorm, t) { b in
                let shape: Shape = [2, 12, 6, 10]
                return try b.graph.groupNorm(b.input("x", shape, offset: 0.5, replacing: [at(shape, 0, 2, 5, 9): nan, at(shape, 1, 7, 0, 0): -inf]),
                                             groups: 4, weight: b.input("w", [12], replacing: [0: -inf]), bias: b.input("bias", [12]),
                                             epsilon: 1e-5, silu: true)
            },
            OperationCase("layer_norm_non_finite", .layerNorm, t) { b in
                try b.graph.layerNorm(b.input("x", [2, 9, 75], offset: 1, replacing: [0: nan, 75 * 3 + 4: inf, 75 * 5 + 1: -inf]),
                                      weight: b.input("w", [75], replacing: [9: nan]), bias: b.input("bias", [75], replacing: [7: inf]), epsilon: 1e-5)
            },
            OperationCase("layer_norm_wide_rows_non_finite", .layerNorm, t) { b in
                try b.graph.layerNorm(b.input("x", [2, 9, 76], offset: 1, replacing: [0: nan, 76 * 4 + 75: inf, 76 * 17 + 1: -inf]),
                                      weight: b.input("w", [76], replacing: [3: -inf]), bias: b.input("bias", [76], replacing: [70: nan]), epsilon: 1e-5)
            },
            OperationCase("rms_norm_non_finite", .rmsNorm, t) { b in
                try b.graph.rmsNorm(b.input("x", [2, 3, 7, 40], replacing: [0: nan, 40 * 2 + 5: inf, 40 * 4 + 1: -inf]),
                                    weight: b.input("w", [40], replacing: [39: inf]), epsilon: 1e-6)
            },
            // Rows with a NaN, a +inf (inf - inf = NaN), a -inf (weight 0), nothing but -inf (0 / 0 = NaN, as torch).
            OperationCase("softmax_non_finite", .softmax, t) { b in
                var special: [Int: Float] = [0: nan, 77 + 5: inf, 154 + 3: -inf, 308 + 1: inf, 308 + 2: -inf]
                for index in 231..<308 { special[index] = -inf }
                return try b.graph.softmax(b.input("x", [2, 3, 11, 77], scale: 8, replacing: special))
            },

            // Attention. A NaN query row; a key whose infinite component gives some queries a +inf score (NaN
            // row: inf - inf in the softmax) and others -inf (weight 0); an infinite value column; a query
            // that a bias row of -inf hides from every key gets zeros, as torch's SDPA.
            OperationCase("attention_non_finite", .attention, t) { b in
                let shape: Shape = [2, 3, 37, 40]
                return try b.graph.attention(b.input("q", shape, replacing: [at(shape, 0, 0, 0, 5): nan]),
                                             b.input("k", shape, replacing: [at(shape, 0, 0, 3, 1): inf]),
                                             b.input("v", shape, replacing: [at(shape, 1, 0, 5, 7): -inf, at(shape, 1, 2, 36, 39): nan]))
            },
            OperationCase("attention_non_finite_token_major", .attention, t) { b in
                let shape: Shape = [2, 29, 120]
                return try b.graph.multiHeadAttention(b.input("q", shape, replacing: [at(shape, 1, 3, 50): nan]),
                                                      b.input("k", [2, 41, 120], replacing: [at([2, 41, 120], 0, 40, 3): -inf]),
                                                      b.input("v", [2, 41, 72], replacing: [at([2, 41, 72], 0, 40, 5): inf, at([2, 41, 72], 1, 0, 70): nan]),
                                                      heads: 3)
            },
            OperationCase("attention_non_finite_head_dim_not_multiple_of_4", .attention, t) { b in
                try b.graph.multiHeadAttention(b.input("q", [2, 13, 54], replacing: [5: inf]), b.input("k", [2, 21, 54], replacing: [at([2, 21, 54], 1, 20, 53): nan]),
                                               b.input("v", [2, 21, 48], replacing: [at([2, 21, 48], 0, 20, 47): -inf]), heads: 3)
            },
            // Causal: keys a query cannot see take no part, whatever they hold (the last key, which past-the-
            // end keys' clamped loads read, and keys inside the diagonal tile).
            OperationCase("attention_causal_non_finite_hidden_keys", .attention, t) { b in
                let shape: Shape = [1, 4, 23, 80]
                return try b.graph.attention(b.input("q", shape), b.input("k", shape, replacing: [at(shape, 0, 2, 22, 0): nan]),
                                             b.input("v", shape, replacing: [at(shape, 0, 0, 20, 3): inf, at(shape, 0, 1, 22, 0): nan,
                                                                             at(shape, 0, 3, 9, 79): -inf]), causal: true)
            },
            OperationCase("attention_bias_non_finite", .attention, t) { b in
                try b.graph.attention(b.input("q", [2, 3, 19, 24]), b.input("k", [2, 3, 45, 24]), b.input("v", [2, 3, 45, 20]),
                                      scale: 1, bias: b.input("bias", [1, 3, 19, 45], scale: 3,
                                                              replacing: wholeRowMasked.merging([at([1, 3, 19, 45], 0, 1, 0, 0): nan,
                                                                                                 at([1, 3, 19, 45], 0, 2, 5, 44): -inf,
                                                                                                 at([1, 3, 19, 45], 0, 2, 7, 3): inf]) { $1 }))
            },
        ]
        // Casts: f32 -> f16 rounds a finite value past 65504 to +-inf (65519 to 65504, 65520 to inf) and keeps NaN.
        let other: DType = t == .float16 ? .float32 : .float16
        cases.append(OperationCase("cast_non_finite", .cast, t) { b in
            let x = b.input("x", [3, 37], replacing: poisoned([3: 70000, 4: -70000, 5: 65519, 6: 65520, 7: 1e-8, 8: 3e38]))
            return try b.graph.cast(b.graph.cast(x, to: other), to: t)
        })
        return cases
    }
}
