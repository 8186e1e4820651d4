import KilnGraph
import KilnVulkan

/// A kernel benchmark: one op at a real model's size. Operands are per-run inputs; the time
/// reported is the op's own GPU time from timestamp queries, so uploads and readbacks are excluded.
public struct KernelBenchmark: Sendable {
    public let name: String
    public let dtype: DType
    /// Builds the op; returns its output and the names and shapes of its inputs.
    public let build: @Sendable (Graph) throws -> Tensor

    /// The benchmark table of the engine-core issue: SD-shaped matmuls, 3x3 convolutions at SD1.5's
    /// 320-channel level, attention at 1024 and 4096 tokens, group norm — each in f32 and f16 —
    /// then the SD1.5 U-Net's own convolutions for a 256x256 CFG step (latent 32x32, batch 2):
    /// few output pixels and many channels at the deep levels, 1x1 projections and shortcuts,
    /// a stride-2 downsampler and the 4-channel conv_in; a VAE resnet convolution with and without
    /// its residual folded in, and the guided sampling step after a 512x512 CFG step.
    public static let all: [KernelBenchmark] = [DType.float32, .float16].flatMap { t -> [KernelBenchmark] in
        @Sendable func input(_ graph: Graph, _ name: String, _ shape: Shape) -> Tensor { graph.input(name, shape, dtype: t) }
        func matmul(_ m: Int, _ k: Int, _ n: Int) -> KernelBenchmark {
            KernelBenchmark(name: "matmul \(m)x\(k)x\(n)", dtype: t) { g in try g.matmul(input(g, "a", [m, k]), input(g, "b", [k, n])) }
        }
        func linear(_ m: Int, _ k: Int, _ n: Int) -> KernelBenchmark {
            KernelBenchmark(name: "linear \(m)x\(k)x\(n) (weight transposed)", dtype: t) { g in
                try g.matmul(input(g, "a", [m, k]), input(g, "w", [n, k]), bias: input(g, "bias", [n]), transposeB: true)
            }
        }
        func conv(_ size: Int) -> KernelBenchmark {
            KernelBenchmark(name: "conv2d 3x3 320->320 \(size)x\(size)", dtype: t) { g in
                try g.conv2d(input(g, "x", [1, 320, size, size]), weight: input(g, "w", [320, 320, 3, 3]), bias: input(g, "b", [320]), padding: (1, 1))
            }
        }
        /// A U-Net convolution: `kernel`x`kernel`, `inChannels`->`outChannels` on a `size`x`size`
        /// input of batch 2 (CFG), padding kernel/2.
        func unetConv(_ kernel: Int, _ inChannels: Int, _ outChannels: Int, _ size: Int, stride: Int = 1) -> KernelBenchmark {
            let strideLabel = stride == 1 ? "" : " stride \(stride)"
            return KernelBenchmark(name: "conv2d \(kernel)x\(kernel) \(inChannels)->\(outChannels) \(size)x\(size) b2\(strideLabel)", dtype: t) { g in
                try g.conv2d(input(g, "x", [2, inChannels, size, size]), weight: input(g, "w", [outChannels, inChannels, kernel, kernel]),
                             bias: input(g, "b", [outChannels]), stride: (stride, stride), padding: (kernel / 2, kernel / 2))
            }
        }
        /// A VAE decoder resnet's second convolution, `channels` -> `channels` at `size`x`size`, with and
        /// without its residual folded in (what the fused addend costs inside the kernel).
        func residualConv(_ channels: Int, _ size: Int, fused: Bool) -> KernelBenchmark {
            KernelBenchmark(name: "conv2d 3x3 \(channels)->\(channels) \(size)x\(size)\(fused ? " + residual" : "")", dtype: t) { g in
                try g.conv2d(input(g, "x", [1, channels, size, size]), weight: input(g, "w", [channels, channels, 3, 3]), bias: input(g, "b", [channels]),
                             addend: fused ? input(g, "r", [1, channels, size, size]) : nil, padding: (1, 1))
            }
        }
        func attention(_ length: Int, _ headDim: Int) -> KernelBenchmark {
            KernelBenchmark(name: "attention 8 heads L=\(length) d=\(headDim)", dtype: t) { g in
                try g.attention(input(g, "q", [1, 8, length, headDim]), input(g, "k", [1, 8, length, headDim]), input(g, "v", [1, 8, length, headDim]))
            }
        }
        return [
            matmul(1024, 1024, 1024), linear(4096, 320, 320), linear(1024, 640, 640), linear(8192, 320, 1280),
            conv(32), conv(64),
            attention(1024, 40), attention(1024, 80), attention(4096, 40), attention(4096, 80),
            KernelBenchmark(name: "group_norm+silu 320x64x64 32 groups", dtype: t) { g in
                try g.groupNorm(input(g, "x", [1, 320, 64, 64]), groups: 32, weight: input(g, "w", [320]), bias: input(g, "b", [320]),
                                epsilon: 1e-5, silu: true)
            },
            unetConv(3, 320, 320, 32), unetConv(3, 640, 640, 16), unetConv(3, 1280, 1280, 8), unetConv(3, 2560, 1280, 8),
            unetConv(3, 1280, 1280, 4), unetConv(3, 2560, 1280, 4), unetConv(3, 640, 640, 16, stride: 2),
            unetConv(1, 320, 320, 32), unetConv(1, 1280, 1280, 8), unetConv(1, 2560, 1280, 4),
            unetConv(3, 4, 320, 32), unetConv(3, 320, 4, 32),
            residualConv(128, 256, fused: false), residualConv(128, 256, fused: true),
            KernelBenchmark(name: "guided_step 512x512 latents, batch 2", dtype: t) { g in
                try g.guidedStep(prediction: input(g, "prediction", [2, 4, 64, 64]), sample: g.input("sample", [1, 4, 64, 64]),
                                 coefficients: g.input("coefficients", [4]))
            },
        ]
    }
}

/// Timing of one benchmark: median and minimum over iterations after a warm-up.
public struct KernelBenchmarkResult: Codable, Sendable {
    public let name: String
    public let dtype: String
    public let medianMilliseconds: Double
    public let minMilliseconds: Double
    public let iterations: Int
    public let gflop: Double
    public let gflopPerSecond: Double
}

extension KernelBenchmark {
    /// Runs once to warm up, then `iterations` times, timing the op with GPU timestamps.
    public func measure(on backend: VulkanBackend, iterations: Int) throws -> KernelBenchmarkResult {
        let graph = Graph()
        let output = try build(graph)
        let prepared = try backend.prepareProfiled(graph, outputs: [output], constants: [:])
        var random = SeededRandom(name: name)
        var inputs: [String: HostTensor] = [:]
        for node in graph.nodes {
            if case .input(let inputName) = node.operation {
                inputs[inputName] = HostTensor(shape: node.shape, scalars: random.normals(node.shape.elementCount, scale: 0.5), dtype: dtype)
            }
        }
        _ = try prepared.run(inputs)
        var times: [Double] = []
        for _ in 0..<max(1, iterations) {
            _ = try prepared.run(inputs)
            times.append(prepared.lastProfile.reduce(0) { $0 + $1.seconds })
        }
        times.sort()
        let median = times[times.count / 2]
        let gflop = prepared.flops / 1e9
        return KernelBenchmarkResult(
            name: name, dtype: dtype.shortName, medianMilliseconds: median * 1e3, minMilliseconds: (times.first ?? 0) * 1e3,
            iterations: times.count, gflop: gflop, gflopPerSecond: gflop / median)
    }
}
