import Foundation
import KilnSampling

/// Classifier-free guidance (Ho & Salimans, https://arxiv.org/abs/2207.12598) over a batch laid
/// out as diffusers lays it out: the unconditional half first, then the conditional half.
enum ClassifierFreeGuidance {
    /// `[2N, C, h, w]` -> `[N, C, h, w]`: uncond + scale * (cond - uncond), then, when `rescale`
    /// is above 0, Lin et al.'s rescale toward the conditional prediction's standard deviation
    /// (https://arxiv.org/abs/2305.08891, eq. 15-16), per image as diffusers' `rescale_noise_cfg`.
    static func combine(_ prediction: ShapedArray, scale: Float, rescale: Float) -> ShapedArray {
        let half = prediction.shape[0] / 2
        let unconditional = prediction.rows(0..<half)
        let conditional = prediction.rows(half..<(2 * half))
        var guided = unconditional.zip(conditional) { uncond, cond in uncond + scale * (cond - uncond) }
        guard rescale > 0 else { return guided }
        let size = guided.scalars.count / half
        for image in 0..<half {
            let range = (image * size)..<((image + 1) * size)
            let ratio = standardDeviation(conditional.scalars[range]) / standardDeviation(guided.scalars[range])
            for index in range {
                let rescaled = guided.scalars[index] * ratio
                guided.scalars[index] = rescale * rescaled + (1 - rescale) * guided.scalars[index]
            }
        }
        return guided
    }

    /// DiTPipeline's guidance over `[2N, C_out, ...]` (conditional half first): the first
    /// `channels` of both halves become `uncond + scale (cond - uncond)`; the rest are kept.
    static func combineClassConditional(_ prediction: ShapedArray, channels: Int, scale: Float) -> ShapedArray {
        let half = prediction.shape[0] / 2
        let perImage = prediction.scalars.count / prediction.shape[0]
        let noiseValues = channels * prediction.shape.dropFirst(2).reduce(1, *)
        var result = prediction
        for image in 0..<half {
            for offset in 0..<noiseValues {
                let conditional = prediction.scalars[image * perImage + offset]
                let unconditional = prediction.scalars[(half + image) * perImage + offset]
                let mixed = unconditional + scale * (conditional - unconditional)
                result.scalars[image * perImage + offset] = mixed
                result.scalars[(half + image) * perImage + offset] = mixed
            }
        }
        return result
    }

    /// The guidance-scale embedding LCM-distilled U-Nets take instead of running an
    /// unconditional branch (Meng et al., https://arxiv.org/abs/2210.03142; diffusers'
    /// `get_guidance_scale_embedding`): sinusoids of (scale - 1) * 1000, sines then cosines,
    /// one row per image, `[count, width]`, computed in float32 as torch does.
    static func scaleEmbedding(scale: Float, width: Int, count: Int) -> ShapedArray {
        let half = width / 2
        let w = (scale - 1) * 1000
        let step = Float(Foundation.log(Double(10000))) / Float(half - 1)
        var row = [Float](repeating: 0, count: width)
        for index in 0..<half {
            let frequency = Float(Foundation.exp(Double(Float(index) * -step)))
            let angle = w * frequency
            row[index] = Float(Foundation.sin(Double(angle)))
            row[half + index] = Float(Foundation.cos(Double(angle)))
        }
        return ShapedArray(shape: [1, width], scalars: row).repeated(count)
    }

    /// torch's `std` (Bessel-corrected), accumulated in f64 and rounded to f32 as torch returns it.
    static func standardDeviation(_ values: ArraySlice<Float>) -> Float {
        let count = Double(values.count)
        let mean = values.reduce(0.0) { $0 + Double($1) } / count
        let squares = values.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) }
        return Float((squares / (count - 1)).squareRoot())
    }
}
