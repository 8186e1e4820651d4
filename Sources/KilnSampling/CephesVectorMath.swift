/// One lane of the Cephes-derived `log256_ps` / `sincos256_ps` that PyTorch's x86 `randn` uses
/// (ATen's `avx_mathfun.h`, after Julien Pommier's sse_mathfun, http://gruntthepeon.free.fr/ssemath/).
///
/// These are float32 polynomial approximations, not libm, and the shipped torch wheels are built
/// with GCC's default `-ffp-contract=fast`, so some multiply-then-add pairs run as one fused
/// multiply-add. Which pairs fuse is part of the bit pattern: GCC fuses a product into the first
/// add or subtract that consumes it, scanning in program order. Every `addingProduct` below marks
/// such a fused pair; every plain `*` followed by `+` is a pair that stays unfused.
enum CephesVectorMath {
    /// Natural logarithm for `x` in (0, 1], as `log256_ps` computes it (denormals flushed up).
    static func logarithm(_ input: Float) -> Float {
        let smallestNormal = Float(bitPattern: 0x0080_0000)
        var x = max(input, smallestNormal)
        let biasedExponent = Int32(bitPattern: x.bitPattern >> 23)
        x = Float(bitPattern: (x.bitPattern & ~UInt32(0x7f80_0000)) | Float(0.5).bitPattern)
        var exponent = Float(biasedExponent - 0x7f) + 1
        // Fold the mantissa into [sqrt(1/2), sqrt(2)) so the polynomial stays accurate.
        let belowHalfRoot = x < Float(0.707106781186547524)
        let carried: Float = belowHalfRoot ? x : 0
        x = x - 1
        if belowHalfRoot { exponent = exponent - 1 }
        x = x + carried

        let square = x * x
        var polynomial = Float(7.0376836292E-2)
        for coefficient: Float in [
            -1.1514610310E-1, 1.1676998740E-1, -1.2420140846E-1, 1.4249322787E-1,
            -1.6668057665E-1, 2.0000714765E-1, -2.4999993993E-1, 3.3333331174E-1,
        ] {
            polynomial = coefficient.addingProduct(polynomial, x)
        }
        polynomial = polynomial * x
        polynomial = (exponent * Float(-2.12194440e-4)).addingProduct(polynomial, square)
        polynomial = polynomial.addingProduct(-square, Float(0.5))
        x = x + polynomial
        return x.addingProduct(exponent, Float(0.693359375))
    }

    /// Sine and cosine of a non-negative angle below 2π, as `sincos256_ps` computes them.
    static func sineCosine(_ angle: Float) -> (sine: Float, cosine: Float) {
        var sineSign = angle.bitPattern & 0x8000_0000
        var x = Float(bitPattern: angle.bitPattern & 0x7fff_ffff)
        // Octant index rounded up to even, exactly as the integer lanes do it.
        var octant = Int32(x * Float(1.27323954473516))
        octant = (octant &+ 1) & ~1
        let octantValue = Float(octant)
        sineSign ^= UInt32(bitPattern: octant & 4) << 29
        let useSinePolynomialForSine = (octant & 2) == 0
        let cosineSign = UInt32(bitPattern: ~(octant &- 2) & 4) << 29

        // Cody-Waite reduction by π/4 split into three parts.
        x = x.addingProduct(octantValue, Float(-0.78515625))
        x = x.addingProduct(octantValue, Float(-2.4187564849853515625e-4))
        x = x.addingProduct(octantValue, Float(-3.77489497744594108e-8))

        let square = x * x
        var cosinePolynomial = Float(-1.388731625493765E-003).addingProduct(Float(2.443315711809948E-005), square)
        cosinePolynomial = Float(4.166664568298827E-002).addingProduct(cosinePolynomial, square)
        cosinePolynomial = cosinePolynomial * square
        cosinePolynomial = (-(square * Float(0.5))).addingProduct(cosinePolynomial, square)
        cosinePolynomial = cosinePolynomial + 1

        var sinePolynomial = Float(8.3321608736E-3).addingProduct(Float(-1.9515295891E-4), square)
        sinePolynomial = Float(-1.6666654611E-1).addingProduct(sinePolynomial, square)
        sinePolynomial = sinePolynomial * square
        sinePolynomial = x.addingProduct(sinePolynomial, x)

        let sine = useSinePolynomialForSine ? sinePolynomial : cosinePolynomial
        let cosine = useSinePolynomialForSine ? cosinePolynomial : sinePolynomial
        return (Float(bitPattern: sine.bitPattern ^ sineSign), Float(bitPattern: cosine.bitPattern ^ cosineSign))
    }
}
