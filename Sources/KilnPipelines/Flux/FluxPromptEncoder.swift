import Foundation
import KilnGraph
import KilnModels
import KilnSampling

/// FluxPipeline's `encode_prompt`: each prompt goes to CLIP-L (77 ids, padded and truncated;
/// its pooled output) and to T5 (ids padded and truncated to `max_sequence_length`, `</s>` kept;
/// its last hidden state); FLUX has no negative prompt.
///
/// Shapes: `encode([p_1 ... p_N], maxSequenceLength: Lt)` -> text states `[N, Lt, d_model]`,
/// pooled `[N, hidden]`.
public final class FluxPromptEncoder {
    public let clipTokenizer: CLIPTokenizer
    public let t5Tokenizer: T5Tokenizer
    public let textEncoder: FluxTextEncoder

    public init(clipTokenizer: CLIPTokenizer, t5Tokenizer: T5Tokenizer, textEncoder: FluxTextEncoder) {
        self.clipTokenizer = clipTokenizer
        self.t5Tokenizer = t5Tokenizer
        self.textEncoder = textEncoder
    }

    /// Loads `tokenizer`, `tokenizer_2`, `text_encoder` and `text_encoder_2` of a FluxPipeline
    /// folder; encoders a single file carries replace the folder's.
    public convenience init(folder: URL, singleFile: FluxSingleFile? = nil, backend: Backend, dtype: DType) throws {
        self.init(clipTokenizer: try CLIPTokenizer.load(folder: folder.appendingPathComponent("tokenizer")),
                  t5Tokenizer: try T5Tokenizer(folder: folder.appendingPathComponent("tokenizer_2")),
                  textEncoder: try FluxTextEncoder(folder: folder, singleFile: singleFile, backend: backend, dtype: dtype))
    }

    /// CLIP ids `[N * 77]` and T5 ids `[N * maxSequenceLength]` of `prompts`, flat.
    public func tokenize(_ prompts: [String], maxSequenceLength: Int) throws -> (clip: [Int32], t5: [Int32]) {
        let clip = prompts.flatMap { clipTokenizer.encode($0, padding: true, truncation: true).map(Int32.init) }
        let t5 = try prompts.flatMap { try t5Tokenizer.encode($0, maxLength: maxSequenceLength).ids }
        return (clip, t5)
    }

    public func encode(_ prompts: [String], maxSequenceLength: Int) throws -> (states: ShapedArray, pooled: ShapedArray) {
        guard !prompts.isEmpty else { throw FluxPipelineError.invalidRequest("no prompt to encode") }
        let ids = try tokenize(prompts, maxSequenceLength: maxSequenceLength)
        return (try textEncoder.states(t5IDs: ids.t5, batch: prompts.count),
                try textEncoder.pooled(clipIDs: ids.clip, batch: prompts.count))
    }
}
