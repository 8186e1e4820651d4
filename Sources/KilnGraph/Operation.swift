/// The one list of operations every backend implements. Each case's inputs, in order, and its
/// output shape are documented here; `Graph`'s builder methods check them.
///
/// Adding an op: a case here, a builder with its shape check (Graph+*.swift), a CPU reference
/// (KilnCPU), a kernel-table entry (KilnVulkan/Kernels) and a line in the op-case table (KilnVerification).
public enum Operation: Hashable, Sendable {
    /// Per-run data supplied by the caller. No inputs.
    case input(name: String)
    /// Data fixed when the graph is prepared (weights): uploaded once, reused every run. No inputs.
    case constant(name: String)

    /// `a [..., M, K] @ b [..., K, N] (+ bias [N]) (+ addend [..., M, N]) -> [..., M, N]`; a
    /// transposed operand is stored `[..., K, M]` / `[..., N, K]`. `b` has a's batch dims or none
    /// (shared weights). The addend (a residual) is added in f32 before the one rounding to storage.
    case matmul(transposeA: Bool, transposeB: Bool, hasBias: Bool, hasAddend: Bool = false)
    /// `x [N, C, H, W] * weight [O, C, kh, kw] (+ bias [O]) (+ addend) -> [N, O, OH, OW]`; the
    /// addend is `[N, O, OH, OW]` (a residual) or `[N, O, 1, 1]` (a per-image channel bias, such as
    /// the U-Net's time embedding), added in f32 before the one rounding to storage.
    case conv2d(Convolution2D)
    /// `x [N, C, *] , weight [C], bias [C] -> x`'s shape; optionally followed by SiLU (fused).
    case groupNorm(groups: Int, epsilon: Float, silu: Bool)
    /// Normalises over the last dim: `x [..., D] (, weight [D]) (, bias [D])`.
    case layerNorm(epsilon: Float, hasWeight: Bool, hasBias: Bool)
    /// `x / sqrt(mean(x^2) + eps) (* weight [D])` over the last dim.
    case rmsNorm(epsilon: Float, hasWeight: Bool)
    /// Softmax over the last dim, computed in f32 with the max subtracted.
    case softmax
    /// `q [B, H, Lq, D], k [B, H, Lk, D], v [B, H, Lk, Dv] (, bias [B or 1, H, Lq, Lk]) -> [B, H, Lq, Dv]`,
    /// softmax(q k^T * scale + bias) v; causal masks key j > query i (top-left aligned, as torch).
    /// The bias is added after scaling (T5's relative position bias). Never materialises the scores.
    /// A query whose scores are all -inf gets zeros (torch's SDPA); keys the causal mask hides take no part.
    /// With `tokenMajorHeads` H > 0, q, k, v and the output are `[B, L, H * D]` instead, as linear
    /// layers produce them (head h is columns `h*D ..< (h+1)*D`): no permutes around the kernel.
    case attention(scale: Float, causal: Bool, hasBias: Bool = false, tokenMajorHeads: Int = 0)
    /// Elementwise with numpy broadcasting: `a, b -> broadcast(a, b)`.
    case binary(BinaryOperator)
    /// Elementwise `x -> f(x)`.
    case unary(UnaryOperator)
    /// `x * factor`.
    case scale(Float)
    /// `min(max(x, lower), upper)`; NaN stays NaN and an infinity becomes its side's bound (torch.clamp).
    case clamp(lower: Float, upper: Float)
    /// `x [..., 2N] -> h * gelu(gate) [..., N]` where `(h, gate) = x.chunk(2, -1)`.
    case geglu
    /// Nearest-neighbour 2x: `[N, C, H, W] -> [N, C, 2H, 2W]`.
    case upsampleNearest2x
    /// Joins all inputs along `axis`; other dims must agree.
    case concat(axis: Int)
    /// `x.narrow(axis, start, length)`.
    case slice(axis: Int, start: Int, length: Int)
    /// Reorders dims: output dim i is input dim `permutation[i]`.
    case permute([Int])
    /// Same elements, new shape (a view: no data moves).
    case reshape(Shape)
    /// `table [V, D], ids (int32) [...] -> [..., D]`.
    case embedding
    /// Sinusoidal embedding of timesteps `t [N] -> [N, dim]` (diffusers' get_timestep_embedding).
    case timestepEmbedding(TimestepEmbedding)
    /// `x [B, L, D], shift [B, D], scale [B, D] -> x * (1 + scale) + shift` (adaLN modulation).
    case modulate
    /// Rotary embedding on interleaved pairs: `x [B, H, L, D], cos [L, D], sin [L, D] -> x`'s shape.
    case rope
    /// Converts storage type; values are unchanged up to the target's rounding.
    case cast(DType)
    /// Winograd F(2x2, 3x3) (Lavin & Gray, https://arxiv.org/abs/1509.09308), the three pieces a
    /// 3x3 "same" convolution becomes around 16 batched GEMMs (`Graph.winogradConvolution`):
    /// `x [N, C, H, W] -> [16, T, C]`, T = N * ceil(H/2) * ceil(W/2) tiles, row-major over (n, tile
    /// row, tile column); each 4x4 input patch (rows 2i-1 ... 2i+2, zero outside) as Bᵀ d B. With
    /// `upsampled`, x is `[N, C, H/2, W/2]` and the patches are read from its nearest-neighbour 2x
    /// upsampling (`upsampleNearest2x`), which is never written out.
    case winogradInput(upsampled: Bool = false)
    /// `weight [O, C, 3, 3] -> [16, O, C]`: G g Gᵀ.
    case winogradWeight
    /// `m [16, T, O] (, bias [O]) (, addend) -> [N, O, H, W]`: Aᵀ m A per tile, cropped to H x W;
    /// the addend as conv2d's (`[N, O, H, W]` or `[N, O, 1, 1]`), summed in f32.
    case winogradOutput(WinogradOutput)
    /// A classifier-free-guided sampling step in one pass: `prediction [G * N, ...]` (G = 2: the
    /// unconditional half then the conditional half; G = 1: no guidance), `sample [N, ...]` f32,
    /// `coefficients [4]` f32 = (guidance g, sample scale a, output scale b, noise scale n)
    /// (, `noise [N, ...]` f32) -> `[N, ...]` f32 = `sample * a + (u + g * (c - u)) * b (+ noise * n)`
    /// with `u`, `c` the two halves (`u + g * (c - u)` = `c` when G = 1), all in f32.
    case guidedStep(hasNoise: Bool)

    /// Name used in errors, the op-case table, profiles and fixtures (`group_norm`, ...).
    public var name: String { kind.rawValue }
}

public enum BinaryOperator: String, Hashable, Sendable, CaseIterable {
    case add, sub, mul
}

public enum UnaryOperator: String, Hashable, Sendable, CaseIterable {
    case silu
    /// The exact (erf) GELU.
    case gelu
    /// GELU's tanh approximation (`approximate="tanh"`).
    case geluTanh = "gelu_tanh"
    /// `x * sigmoid(1.702 x)` (CLIP).
    case quickGelu = "quick_gelu"
    case exp
}

/// Stride and zero padding of a 2-D convolution (no dilation, one group), and which optional inputs it takes. Padding may differ per
/// side: `paddingY`/`paddingX` are the top/left pads, `extraPaddingBottom`/`extraPaddingRight`
/// add to them on the far sides (diffusers' VAE downsampler pads (0, 1, 0, 1)).
public struct Convolution2D: Hashable, Sendable {
    public var strideY: Int, strideX: Int
    public var paddingY: Int, paddingX: Int
    public var extraPaddingBottom: Int, extraPaddingRight: Int
    public var hasBias: Bool
    /// An addend follows the weight and bias among the inputs.
    public var hasAddend: Bool

    public init(
        stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0), extraPadding: (bottom: Int, right: Int) = (0, 0),
        hasBias: Bool, hasAddend: Bool = false
    ) {
        (strideY, strideX) = stride
        (paddingY, paddingX) = padding
        (extraPaddingBottom, extraPaddingRight) = extraPadding
        self.hasBias = hasBias
        self.hasAddend = hasAddend
    }
}

/// The output of `Operation.winogradOutput`: `[batch, O, height, width]`, and its optional inputs.
public struct WinogradOutput: Hashable, Sendable {
    public var batch: Int, height: Int, width: Int
    public var hasBias: Bool, hasAddend: Bool

    public init(batch: Int, height: Int, width: Int, hasBias: Bool, hasAddend: Bool) {
        (self.batch, self.height, self.width) = (batch, height, width)
        (self.hasBias, self.hasAddend) = (hasBias, hasAddend)
    }

    /// Tiles of 2x2 outputs: `batch * ceil(height / 2) * ceil(width / 2)`.
    public var tiles: Int { batch * ((height + 1) / 2) * ((width + 1) / 2) }
}

/// Parameters of diffusers' `get_timestep_embedding`.
public struct TimestepEmbedding: Hashable, Sendable {
    public var dimension: Int
    public var flipSinToCos: Bool
    public var downscaleFrequencyShift: Float
    public var maxPeriod: Float
    public var scale: Float

    public init(
        dimension: Int, flipSinToCos: Bool, downscaleFrequencyShift: Float,
        maxPeriod: Float = 10000, scale: Float = 1
    ) {
        self.dimension = dimension
        self.flipSinToCos = flipSinToCos
        self.downscaleFrequencyShift = downscaleFrequencyShift
        self.maxPeriod = maxPeriod
        self.scale = scale
    }
}
