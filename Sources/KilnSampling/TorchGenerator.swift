import Foundation

/// A source of standard-normal noise for samplers that inject noise (ancestral, SDE, DDPM).
///
/// A class, not a value: like `torch.Generator`, one generator is shared by the initial-latent
/// draw and every later per-step draw, and each draw advances it.
public protocol NoiseGenerator: AnyObject {
    /// `count` standard-normal float32 values, as `torch.randn(shape)` with `count` = numel(shape).
    func normal(count: Int) -> [Float]
}

extension NoiseGenerator {
    /// A `[shape]` tensor of standard-normal values (row-major, like a contiguous torch tensor).
    public func normal(shape: [Int]) -> ShapedArray {
        let count = shape.reduce(1, *)
        return ShapedArray(shape: shape, scalars: normal(count: count))
    }
}

/// Bit-for-bit `torch.Generator("cpu").manual_seed(seed)` followed by
/// `torch.randn(..., generator=g, dtype=torch.float32)` calls, successive calls included.
///
/// torch fills a float32 tensor in one of two ways, and both are reproduced here:
/// - fewer than 16 elements: one element at a time by Box-Muller in float64 over two 53-bit
///   uniforms; the second value of each pair is cached *in the generator* and returned by the
///   next scalar draw, even one made by a later `randn` call;
/// - 16 or more: every element first gets a 24-bit uniform, then each block of 16 is turned into
///   normals by Box-Muller over the pairs (j, j + 8) in float32. A trailing partial block is not
///   handled by itself: 16 fresh uniforms overwrite the *last 16* elements (overlapping values
///   already produced) and that block is transformed again. This path never reads or clears the
///   cached scalar value.
///
/// The float32 Box-Muller depends on how torch was built. x86-64 wheels (AVX2 or AVX-512 CPUs)
/// use the Cephes polynomials in `avx_mathfun.h`: ``Variant/x86Vectorized``, the default. Builds
/// without that kernel (aarch64, or `ATEN_CPU_CAPABILITY=default`) call the C library's `logf`,
/// `cosf`, `sinf`: ``Variant/scalarLibm``, which matches only where this process links the same
/// libm as torch did (glibc on Linux). The two differ by a few float32 ulps.
public final class TorchGenerator: NoiseGenerator {
    /// Which float32 Box-Muller kernel to reproduce for tensors of 16 or more elements.
    public enum Variant: Sendable {
        /// torch's `normal_fill_16_AVX2`, used by x86-64 builds on AVX2 and AVX-512 machines.
        case x86Vectorized
        /// torch's portable `normal_fill_16`, using the platform `logf`/`cosf`/`sinf`.
        case scalarLibm
    }

    /// The seed given to `manual_seed`, as torch reports it from `initial_seed()`.
    public let seed: UInt64
    public let variant: Variant
    private var engine: MersenneTwister
    private var cachedNormal: Double?

    public init(seed: UInt64, variant: Variant = .x86Vectorized) {
        self.seed = seed
        self.variant = variant
        self.engine = MersenneTwister(seed: seed)
    }

    /// A negative Python seed, mapped the way `torch.Generator.manual_seed` maps it (two's complement).
    public convenience init(seed: Int64, variant: Variant = .x86Vectorized) {
        self.init(seed: UInt64(bitPattern: seed), variant: variant)
    }

    public func normal(count: Int) -> [Float] {
        guard count > 0 else { return [] }
        if count >= 16 { return blockNormals(count: count) }
        return (0..<count).map { _ in Float(scalarNormal()) }
    }

    /// `torch.randint(low, high, (count,), generator=g)`: `count` integers in `range`, drawn one
    /// after the other. torch's CPU kernel (`uniform_int_from_to_distribution`) takes one 32-bit
    /// engine output modulo the range's width below 2^28 and one 64-bit output (two 32-bit ones,
    /// high word first) from 2^28 on, adding `low`: no rejection, so the draws are exactly torch's.
    /// The cached scalar normal is neither used nor cleared. An empty range gives no draws.
    public func integers(count: Int, in range: Range<Int64>) -> [Int64] {
        guard count > 0, !range.isEmpty else { return [] }
        let width = UInt64(bitPattern: range.upperBound &- range.lowerBound)
        return (0..<count).map { _ in
            let draw = width >= 1 << 28 ? engine.next64() : UInt64(engine.next32())
            return range.lowerBound &+ Int64(bitPattern: draw % width)
        }
    }

    /// `torch.randint(low, high, (1,), generator=g).item()`.
    public func integer(in range: Range<Int64>) -> Int64 {
        integers(count: 1, in: range).first ?? range.lowerBound
    }

    /// One float64 Box-Muller value, as `at::normal_distribution<double>` draws it.
    private func scalarNormal() -> Double {
        if let cached = cachedNormal {
            cachedNormal = nil
            return cached
        }
        let first = uniformDouble()
        let second = uniformDouble()
        let radius = (-2.0 * log1p(-second)).squareRoot()
        let angle = 2.0 * Double.pi * first
        cachedNormal = radius * sin(angle)
        return radius * cos(angle)
    }

    private func uniformDouble() -> Double {
        let mantissa = engine.next64() & ((1 << 53) - 1)
        return Double(mantissa) * 0x1p-53
    }

    private func uniformFloat() -> Float {
        let mantissa = engine.next32() & ((1 << 24) - 1)
        return Float(mantissa) * 0x1p-24
    }

    private func blockNormals(count: Int) -> [Float] {
        var values = (0..<count).map { _ in uniformFloat() }
        var start = 0
        while start + 16 <= count {
            transformBlock(&values, start: start)
            start += 16
        }
        if count % 16 != 0 {
            let tailStart = count - 16
            for offset in 0..<16 { values[tailStart + offset] = uniformFloat() }
            transformBlock(&values, start: tailStart)
        }
        return values
    }

    private func transformBlock(_ values: inout [Float], start: Int) {
        // float(2 * pi) as the kernel's broadcast constant; the libm kernel instead rounds the
        // float64 product 2π·u to float32 once.
        let twoPi = Float(2.0 * Double.pi)
        for lane in 0..<8 {
            let first = 1 - values[start + lane]  // [0, 1) -> (0, 1] so the logarithm is finite
            let second = values[start + lane + 8]
            switch variant {
            case .x86Vectorized:
                let radius = (-2 * CephesVectorMath.logarithm(first)).squareRoot()
                let (sine, cosine) = CephesVectorMath.sineCosine(twoPi * second)
                values[start + lane] = radius * cosine
                values[start + lane + 8] = radius * sine
            case .scalarLibm:
                let radius = (-2 * logf(first)).squareRoot()
                let angle = Float(2.0 * Double.pi * Double(second))
                values[start + lane] = radius * cosf(angle)
                values[start + lane + 8] = radius * sinf(angle)
            }
        }
    }
}
