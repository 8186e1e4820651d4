import Foundation
import KilnGraph

/// Deterministic random weights of whatever shape a model asks for, so full-size architectures
/// run (and are benchmarked) with no checkpoint on disk. Values keep activations finite through
/// deep networks: matrices and kernels are uniform with the variance of 1/fan-in, norm scales
/// are 1 and biases small.
public final class SyntheticTensors: TensorSource, @unchecked Sendable {
    public let origin = "synthetic weights"
    private let seed: UInt64
    private let lock = NSLock()
    private var shapes: [String: Shape] = [:]

    public init(seed: UInt64 = 0) { self.seed = seed }

    public func shape(of name: String) -> Shape? { lock.withLock { shapes[name] } }

    public func shape(of name: String, expected: Shape) -> Shape? {
        lock.withLock {
            shapes[name] = expected
            return expected
        }
    }

    public var names: [String] { lock.withLock { shapes.keys.sorted() } }

    public func load(_ name: String) throws -> HostTensor {
        guard let shape = shape(of: name) else { throw WeightError.missing(origin: origin, name: name, expected: nil) }
        let count = shape.elementCount
        let isNorm = name.contains("norm") || name.contains("ln_")
        if isNorm && name.hasSuffix(".weight") { return HostTensor(shape: shape, scalars: .init(repeating: 1, count: count)) }
        let fanIn = shape.rank > 1 ? shape.count(from: 1) : max(count, 1)
        let limit: Float = name.hasSuffix(".bias") ? 0.02 : (3 / Float(fanIn)).squareRoot()
        var state = seed ^ name.utf8.reduce(UInt64(0xcbf2_9ce4_8422_2325)) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
        let values = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            for index in 0..<count {
                // SplitMix64: fast and good enough for weights nobody trained.
                state &+= 0x9e37_79b9_7f4a_7c15
                var z = (state ^ (state >> 30)) &* 0xbf58_476d_1ce4_e5b9
                z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
                z ^= z >> 31
                buffer[index] = (Float(z >> 40) / Float(1 << 24) * 2 - 1) * limit
            }
            initialized = count
        }
        return HostTensor(shape: shape, scalars: values)
    }
}
