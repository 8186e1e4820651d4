/// The two 8-bit float formats safetensors files store (`F8_E4M3`, `F8_E5M2`; FLUX checkpoints are
/// often shipped as `float8_e4m3fn`), decoded to f32. Every value of both is exactly
/// representable in f16, so weights read from them lose nothing on an f16 device.
public enum Float8 {
    /// `float8_e4m3fn`: 1 sign, 4 exponent (bias 7), 3 mantissa bits; no infinities, and only
    /// `S.1111.111` is NaN, so the largest magnitude is 448.
    public static func e4m3fn(_ bits: UInt8) -> Float {
        let sign: Float = bits & 0x80 == 0 ? 1 : -1
        let exponent = Int((bits >> 3) & 0x0F), mantissa = Float(bits & 0x07)
        if exponent == 0x0F && bits & 0x07 == 0x07 { return .nan }
        if exponent == 0 { return sign * mantissa / 8 * Float(sign: .plus, exponent: -6, significand: 1) }
        return sign * (1 + mantissa / 8) * Float(sign: .plus, exponent: exponent - 7, significand: 1)
    }

    /// `float8_e5m2`: the upper byte of an IEEE f16 (1 sign, 5 exponent, 2 mantissa bits),
    /// infinities and NaNs included.
    public static func e5m2(_ bits: UInt8) -> Float {
        Float(Float16(bitPattern: UInt16(bits) << 8))
    }
}
