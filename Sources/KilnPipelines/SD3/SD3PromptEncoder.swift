import KilnGraph
import KilnModels
import KilnSampling

/// The text conditioning of Stable Diffusion 3, computed as diffusers'
/// `StableDiffusion3Pipeline.encode_prompt`: each prompt goes through CLIP-L and CLIP-G (77
/// tokens each); their penultimate hidden states are joined on the channel axis and zero-padded
/// to the transformer's `joint_attention_dim`, then T5's states follow along the sequence; the
/// pooled vector is CLIP-L's projected text embedding joined with CLIP-G's. Without T5 (no
/// encoder, or asked to leave it out: diffusers' `text_encoder_3=None`) T5's states are zeros.
///
/// Shapes: `encode([p_1 ... p_N], maxSequenceLength: S)` -> context `[N, 77 + S, joint]`,
/// pooled `[N, P_L + P_G]`.
final class SD3PromptEncoder {
    let clipL: PromptEncoder
    let clipG: PromptEncoder
    let t5: T5PromptEncoder?
    /// The transformer's text width: CLIP's joined states are padded to it.
    let jointWidth: Int

    init(folder: StableDiffusion3Folder, backend: Backend, dtype: DType) throws {
        clipL = PromptEncoder([("text_encoder", folder.tokenizer, folder.textEncoder, true, .projected)], backend: backend, dtype: dtype)
        clipG = PromptEncoder([("text_encoder_2", folder.tokenizer2, folder.textEncoder2, true, .projected)], backend: backend, dtype: dtype)
        jointWidth = folder.transformer.configuration.jointAttentionDimension
        if let component = folder.textEncoder3, let tokenizer = folder.tokenizer3 {
            guard component.configuration.modelWidth == jointWidth else {
                throw PipelineError.invalidModel(
                    "the T5 encoder's d_model \(component.configuration.modelWidth) differs from the transformer's joint_attention_dim \(jointWidth)")
            }
            t5 = T5PromptEncoder(tokenizer: tokenizer, component: component, label: "text_encoder_3", backend: backend, dtype: dtype)
        } else {
            t5 = nil
        }
        let clipWidth = clipL.contextWidth + clipG.contextWidth
        guard clipWidth <= jointWidth else {
            throw PipelineError.invalidModel("the CLIP encoders' joined width \(clipWidth) exceeds the transformer's joint_attention_dim \(jointWidth)")
        }
        for (name, component) in [("text_encoder", folder.textEncoder), ("text_encoder_2", folder.textEncoder2)] where !component.configuration.hasProjection {
            throw PipelineError.invalidModel("SD3's \(name) must be a CLIPTextModelWithProjection (its pooled output is projected)")
        }
    }

    func encode(_ prompts: [String], maxSequenceLength: Int, withoutT5: Bool) throws -> PromptEncoder.Embeddings {
        let large = try clipL.encode(prompts)
        let giant = try clipG.encode(prompts)
        guard let pooledL = large.pooled, let pooledG = giant.pooled else {
            throw PipelineError.failed("a CLIP encoder produced no projected pooled embedding")
        }
        let clip = PromptEncoder.joinedOnLastAxis([large.context, giant.context])                      // [N, 77, D_L + D_G]
        let padding = ShapedArray(repeating: 0, shape: clip.shape.dropLast() + [jointWidth - clip.shape[2]])
        let paddedCLIP = PromptEncoder.joinedOnLastAxis([clip, padding])                               // [N, 77, joint]
        let t5States = try t5.flatMap { withoutT5 ? nil : try $0.encode(prompts, maxSequenceLength: maxSequenceLength) }
            ?? ShapedArray(repeating: 0, shape: [prompts.count, maxSequenceLength, jointWidth])      // [N, S, joint]
        let context = Self.joinedOnSequence([paddedCLIP, t5States])                                    // [N, 77 + S, joint]
        return PromptEncoder.Embeddings(context: context, pooled: PromptEncoder.joinedOnLastAxis([pooledL, pooledG]))
    }

    /// The encoders as components LoRAs may change (kohya: `lora_te1_`, `lora_te2_`, `lora_te3_`).
    var loraSlots: [LoRAAdapters.Slot] {
        clipL.loraSlots(kohyaPrefixes: [["lora_te1_"]]) + clipG.loraSlots(kohyaPrefixes: [["lora_te2_"]])
            + (t5.map { [$0.loraSlot(kohyaPrefixes: ["lora_te3_"])] } ?? [])
    }

    func addCLIPWeights(to footprint: inout WeightFootprint) {
        clipL.addWeights(to: &footprint)
        clipG.addWeights(to: &footprint)
    }

    /// `torch.cat(parts, dim=-2)` for `[N, L_i, D]` parts.
    static func joinedOnSequence(_ parts: [ShapedArray]) -> ShapedArray {
        let batch = parts[0].shape[0], width = parts[0].shape[2]
        var scalars = [Float]()
        scalars.reserveCapacity(parts.reduce(0) { $0 + $1.scalars.count })
        for item in 0..<batch {
            for part in parts {
                let size = part.shape[1] * width
                scalars += part.scalars[(item * size)..<((item + 1) * size)]
            }
        }
        return ShapedArray(shape: [batch, parts.reduce(0) { $0 + $1.shape[1] }, width], scalars: scalars)
    }
}
