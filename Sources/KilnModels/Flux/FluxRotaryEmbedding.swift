import Foundation
import KilnGraph

/// FLUX's 3-axis rotary position embedding (diffusers' FluxPosEmbed), computed on the host.
///
/// Every token has 3 position ids (text tokens: all zero in FluxPipeline; image patches:
/// `(0, row, column)`). Axis `a` owns `axesDimensions[a]` consecutive head dims, rotated in
/// interleaved pairs by `id[a] * theta^(-2i / axesDimensions[a])`. The tables repeat each angle's
/// cos/sin for both dims of its pair, which is the layout the graph's `rope` op reads
/// (`(x[2i], x[2i+1]) -> (x[2i] cos - x[2i+1] sin, x[2i+1] cos + x[2i] sin)`), the same
/// pairing as diffusers' apply_rotary_emb with `use_real_unbind_dim=-1`; no layout change needed.
///
/// Shapes: ids `[L, 3]` (text ids first, then image ids, as the transformer concatenates
/// them) -> cos, sin `[L, sum(axesDimensions)]`.
public struct FluxRotaryEmbedding: Sendable, Equatable {
    public var axesDimensions: [Int]
    public var theta: Double

    public init(axesDimensions: [Int], theta: Double = 10_000) {
        self.axesDimensions = axesDimensions
        self.theta = theta
    }

    /// cos and sin tables `[L, D]` for `ids` given row-major `[L, axes]`. Angles are computed in
    /// f64 as diffusers does (off Apple's MPS), then rounded to f32.
    public func tables(ids: [Float], length: Int) throws -> (cos: HostTensor, sin: HostTensor) {
        let axes = axesDimensions.count
        guard ids.count == length * axes else {
            throw GraphError("fluxRotaryEmbedding", "\(ids.count) position ids are not [\(length), \(axes)]")
        }
        let width = axesDimensions.reduce(0, +)
        var cosines = [Float](repeating: 0, count: length * width)
        var sines = cosines
        for token in 0..<length {
            var column = token * width
            for (axis, dimension) in axesDimensions.enumerated() {
                let position = Double(ids[token * axes + axis])
                for pair in 0..<(dimension / 2) {
                    let frequency = 1 / Foundation.pow(theta, Double(2 * pair) / Double(dimension))
                    let angle = position * frequency
                    let (c, s) = (Float(Foundation.cos(angle)), Float(Foundation.sin(angle)))
                    cosines[column] = c; cosines[column + 1] = c
                    sines[column] = s; sines[column + 1] = s
                    column += 2
                }
            }
        }
        return (HostTensor(shape: [length, width], scalars: cosines), HostTensor(shape: [length, width], scalars: sines))
    }

    /// Tables for the joint sequence `[text; image]` from `textIDs [Lt, 3]` and `imageIDs [Li, 3]`.
    public func tables(textIDs: HostTensor, imageIDs: HostTensor) throws -> (cos: HostTensor, sin: HostTensor) {
        let axes = axesDimensions.count
        for (ids, role) in [(textIDs, "txt_ids"), (imageIDs, "img_ids")] {
            guard ids.shape.rank == 2, ids.shape[1] == axes else {
                throw GraphError("fluxRotaryEmbedding", "\(role) has shape \(ids.shape), expected [L, \(axes)]")
            }
        }
        return try tables(ids: textIDs.scalars + imageIDs.scalars, length: textIDs.shape[0] + imageIDs.shape[0])
    }
}
