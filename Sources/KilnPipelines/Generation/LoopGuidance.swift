import KilnSampling

/// How the denoising loop batches the model for guidance and mixes its prediction, in each
/// family's diffusers layout.
enum LoopGuidance: Sendable, Equatable {
    /// One model call per image: no guidance, FLUX's embedded guidance, LCM's guidance embedding.
    case none
    /// Classifier-free guidance (Ho & Salimans, https://arxiv.org/abs/2207.12598) as the SD and SD3
    /// pipelines batch it: `[uncond × N; cond × N]` from the loop's `N` latents; with `rescale`
    /// above 0, Lin et al.'s rescale.
    case classifierFree(scale: Float, rescale: Float)
    /// DiTPipeline's: the loop carries the doubled batch itself, conditional labels first, and
    /// mixes only the first `channels` (the noise; learned-sigma variance channels are kept)
    /// into both halves, which the scheduler then steps together.
    case classConditional(scale: Float, channels: Int)

    /// Model calls per image.
    var batchMultiplier: Int {
        if case .none = self { 1 } else { 2 }
    }

    /// The scale a device step mixes with (1 when nothing is mixed).
    var scale: Float {
        switch self {
        case .none: 1
        case .classifierFree(let scale, _), .classConditional(let scale, _): scale
        }
    }

    /// The loop's state for `latents` `[N, ...]`: DiT's guidance carries the doubled batch.
    func state(from latents: ShapedArray) -> ShapedArray {
        if case .classConditional = self { latents.repeated(2) } else { latents }
    }

    /// The model batch for one step from the loop's state.
    func modelInput(_ state: ShapedArray) -> ShapedArray {
        switch self {
        case .none: state
        case .classifierFree: state.repeated(2)
        case .classConditional: state.rows(0..<(state.shape[0] / 2)).repeated(2)
        }
    }

    /// The model's output mixed as the family mixes it: `[N, ...]` for classifier-free
    /// guidance, the whole doubled batch for DiT's, unchanged without guidance.
    func combined(_ prediction: ShapedArray) -> ShapedArray {
        switch self {
        case .none:
            return prediction
        case .classifierFree(let scale, let rescale):
            return ClassifierFreeGuidance.combine(prediction, scale: scale, rescale: rescale)
        case .classConditional(let scale, let channels):
            return ClassifierFreeGuidance.combineClassConditional(prediction, channels: channels, scale: scale)
        }
    }

    /// The final latents `[N, ...]` from the loop's last state.
    func latents(from state: ShapedArray) -> ShapedArray {
        if case .classConditional = self { state.rows(0..<(state.shape[0] / 2)) } else { state }
    }
}
