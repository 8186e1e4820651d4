/// The 32-bit Mersenne Twister MT19937, seeded the way PyTorch's `at::mt19937` seeds it.
///
/// Matsumoto & Nishimura, "Mersenne Twister: a 623-dimensionally equidistributed uniform
/// pseudo-random number generator" (1998), https://doi.org/10.1145/272991.272995.
///
/// torch keeps only the low 32 bits of a 64-bit seed for the engine state, so seeds that differ
/// only above bit 31 give the same stream (`manual_seed(2**32 + 5)` draws what `manual_seed(5)` does).
struct MersenneTwister: Sendable {
    private static let stateSize = 624
    private static let shift = 397

    private var state: [UInt32]
    private var index: Int

    init(seed: UInt64) {
        var state = [UInt32](repeating: 0, count: Self.stateSize)
        state[0] = UInt32(truncatingIfNeeded: seed)
        for position in 1..<Self.stateSize {
            let previous = state[position - 1]
            state[position] = 1_812_433_253 &* (previous ^ (previous >> 30)) &+ UInt32(position)
        }
        self.state = state
        self.index = Self.stateSize
    }

    /// The next tempered 32-bit output (`generator->random()` in ATen).
    mutating func next32() -> UInt32 {
        if index >= Self.stateSize { regenerate() }
        var value = state[index]
        index += 1
        value ^= value >> 11
        value ^= (value << 7) & 0x9d2c_5680
        value ^= (value << 15) & 0xefc6_0000
        value ^= value >> 18
        return value
    }

    /// Two outputs joined high word first (`generator->random64()` in ATen).
    mutating func next64() -> UInt64 {
        let high = UInt64(next32())
        let low = UInt64(next32())
        return high << 32 | low
    }

    private mutating func regenerate() {
        let count = Self.stateSize
        for position in 0..<count {
            let mixed = (state[position] & 0x8000_0000) | (state[(position + 1) % count] & 0x7fff_ffff)
            var next = state[(position + Self.shift) % count] ^ (mixed >> 1)
            if mixed & 1 != 0 { next ^= 0x9908_b0df }
            state[position] = next
        }
        index = 0
    }
}
