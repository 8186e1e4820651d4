import Foundation
import KilnGraph

/// T5's bidirectional relative position buckets (Raffel et al. 2020, https://arxiv.org/abs/1910.10683,
/// section 2.1), computed on the host: the encoder gathers its learned bias table with them.
///
/// A relative position is `key - query`. Half the buckets hold positive offsets. Within a half,
/// the first quarter of all buckets are exact distances; the rest cover distances up to
/// `maxDistance` logarithmically, and everything farther shares the last bucket.
public struct T5RelativePositionBuckets: Sendable, Equatable {
    public let bucketCount: Int
    public let maxDistance: Int

    public init(bucketCount: Int, maxDistance: Int) {
        self.bucketCount = bucketCount
        self.maxDistance = maxDistance
    }

    public init(_ configuration: T5Configuration) {
        self.init(bucketCount: configuration.relativeAttentionBucketCount, maxDistance: configuration.relativeAttentionMaxDistance)
    }

    /// The bucket of one relative position `key - query`, in `0..<bucketCount`.
    public func bucket(relativePosition: Int) -> Int32 {
        let half = bucketCount / 2
        let exact = half / 2
        let base = relativePosition > 0 ? half : 0
        let distance = abs(relativePosition)
        if distance < exact { return Int32(base + distance) }
        // transformers computes this in float32 and truncates: the same rounding keeps
        // distances on a bucket boundary (16, 32, 64 for T5-XXL) in the same bucket.
        let ratio = Float(distance) / Float(exact)
        let logRange = Float(Foundation.log(Double(maxDistance) / Double(exact)))
        let logarithmic = Foundation.log(ratio) / logRange * Float(half - exact)
        return Int32(base + min(exact + Int(logarithmic), half - 1))
    }

    /// `[L, L]` int32: entry `(i, j)` is the bucket of key `j` seen from query `i`.
    public func table(length: Int) -> HostTensor {
        var ids = [Int32](repeating: 0, count: length * length)
        for query in 0..<length {
            for key in 0..<length { ids[query * length + key] = bucket(relativePosition: key - query) }
        }
        return HostTensor(shape: [length, length], integers: ids)
    }
}
