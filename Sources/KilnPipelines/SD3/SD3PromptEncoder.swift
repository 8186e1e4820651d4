import KilnGraph
import KilnModels
import KilnSampling

/// The text conditioning of Stable Diffusion 3, computed as diffusers'
/// `StableDiffusion3Pipeline.encode_prompt`: each prompt goes through CLIP-L and CLIP-G (77
/// tokens each); their penultimate hidden states are joined on the channel axis and zero-padded
/// to the transformer's `joint_attention_dim`, then T5's states follow along the sequence; the
/// pooled vector is CLIP-L's projected text embedding joined with CLIP-G's.
///
/// T5 reads each prompt padded or truncated to `max_sequence_length` tokens (ending in `</s>`,
/// no attention mask, as diffusers calls it). Without a T5 encoder (diffusers'
/// `text_encoder_3=None`) T5's states are zeros `[N, max_sequence_length, joint_attention_dim]`.
///
/// Shapes: `encode([p_1 ... p_N], maxSequenceLength: S)` -> context `[N, 77 + S, joint]`,
/// pooled `[N, P_L + P_G]`.
final class SD3PromptEncoder {
    private let clipL: PromptEncoder
    private let clipG: PromptEncoder
    /// The transformer's text width: CLIP's joined states are padded to it.
    let jointWidth: Int
    private let t5: (component: StableDiffusionCheckpoint.Component<T5Configuration>, tokenizer: T5Tokenizer)?
    private let backend: Backend
    private let dtype: DType
    private var preparedT5: [String: any PreparedGraph] = [:]

    init(folder: StableDiffusion3Folder, backend: Backend, dtype: DType) throws {
        clipL = PromptEncoder(
            encoders: [.init(tokenizer: folder.tokenizer, component: folder.textEncoder, usesPenultimateState: true, suppliesPooled: true)],
            backend: backend, dtype: dtype)
        clipG = PromptEncoder(
            encoders: [.init(tokenizer: folder.tokenizer2, component: folder.textEncoder2, usesPenultimateState: true, suppliesPooled: true)],
            backend: backend, dtype: dtype)
        jointWidth = folder.transformer.configuration.jointAttentionDimension
        self.backend = backend
        self.dtype = dtype
        if let component = folder.textEncoder3, let tokenizer = folder.tokenizer3 {
            guard component.configuration.modelWidth == jointWidth else {
                throw PipelineError.unsupported(
                    "the T5 encoder's d_model \(component.configuration.modelWidth) differs from the transformer's joint_attention_dim \(jointWidth)")
            }
            t5 = (component, tokenizer)
        } else {
            t5 = nil
        }
        let clipWidth = clipL.contextWidth + clipG.contextWidth
        guard clipWidth <= jointWidth else {
            throw PipelineError.unsupported(
                "the CLIP encoders' joined width \(clipWidth) exceeds the transformer's joint_attention_dim \(jointWidth)")
        }
        for (name, component) in [("text_encoder", folder.textEncoder), ("text_encoder_2", folder.textEncoder2)] where !component.configuration.hasProjection {
            throw PipelineError.unsupported("SD3's \(name) must be a CLIPTextModelWithProjection (its pooled output is projected)")
        }
    }

    func encode(_ prompts: [String], maxSequenceLength: Int) throws -> PromptEncoder.Embeddings {
        let large = try clipL.encode(prompts)
        let giant = try clipG.encode(prompts)
        guard let pooledL = large.pooled, let pooledG = giant.pooled else {
            throw PipelineError.unsupported("a CLIP encoder produced no projected pooled embedding")
        }
        let clip = PromptEncoder.joinedOnLastAxis([large.context, giant.context])                      // [N, 77, D_L + D_G]
        let padding = ShapedArray(repeating: 0, shape: clip.shape.dropLast() + [jointWidth - clip.shape[2]])
        let paddedCLIP = PromptEncoder.joinedOnLastAxis([clip, padding])                               // [N, 77, joint]
        let t5States = try t5Encode(prompts, maxSequenceLength: maxSequenceLength)                      // [N, S, joint]
        let context = Self.joinedOnSequence([paddedCLIP, t5States])                                    // [N, 77 + S, joint]
        return PromptEncoder.Embeddings(context: context, pooled: PromptEncoder.joinedOnLastAxis([pooledL, pooledG]))
    }

    /// T5's last hidden state for each prompt, or zeros without a T5 encoder.           [N, S, joint]
    private func t5Encode(_ prompts: [String], maxSequenceLength: Int) throws -> ShapedArray {
        guard let t5 else { return ShapedArray(repeating: 0, shape: [prompts.count, maxSequenceLength, jointWidth]) }
        var ids = [Int32]()
        for prompt in prompts { ids += try t5.tokenizer.encode(prompt, maxLength: maxSequenceLength).ids }
        let key = "\(prompts.count)-\(maxSequenceLength)"
        let graph: any PreparedGraph
        if let prepared = preparedT5[key] {
            graph = prepared
        } else {
            let built = Graph()
            let binder = WeightBinder(graph: built, source: t5.component.weights, dtype: dtype)
            let model = T5EncoderModel(configuration: t5.component.configuration)
            let states = try model(
                ids: built.input("ids", [prompts.count, maxSequenceLength], dtype: .int32),
                relativePositionBuckets: built.input("buckets", [maxSequenceLength, maxSequenceLength], dtype: .int32),
                weights: WeightScope(binder))
            graph = try backend.prepare(built, outputs: [states], constants: binder.constants())
            preparedT5[key] = graph
        }
        let model = T5EncoderModel(configuration: t5.component.configuration)
        let outputs = try graph.run([
            "ids": HostTensor(shape: [prompts.count, maxSequenceLength], integers: ids),
            "buckets": model.relativePositionBuckets(length: maxSequenceLength),
        ])
        return ShapedArray(outputs[0])
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
