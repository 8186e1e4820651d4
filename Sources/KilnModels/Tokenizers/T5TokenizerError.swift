/// Why a T5 tokenizer could not be built or could not encode.
public enum T5TokenizerError: Error, Equatable, CustomStringConvertible {
    /// The folder has neither `tokenizer.json` nor `spiece.model`.
    case noTokenizerFiles(folder: String)
    /// A file could not be read (missing or unreadable).
    case unreadableFile(path: String, reason: String)
    /// A JSON file is not valid JSON or not an object.
    case malformedJSON(path: String, reason: String)
    /// A field of `tokenizer.json` or a configuration file is missing or has the wrong form.
    case malformedField(path: String, field: String, reason: String)
    /// `tokenizer.json` names a model, normalizer, pre-tokenizer or post-processor Kiln does not
    /// implement.
    case unsupportedComponent(path: String, component: String, type: String)
    /// `spiece.model` is not a SentencePiece `ModelProto` Kiln can use.
    case malformedSentencePieceModel(path: String, offset: Int, reason: String)
    /// A `precompiled_charsmap` blob is inconsistent.
    case malformedCharsMap(source: String, reason: String)
    /// A `Replace` normalizer's regular expression does not compile.
    case invalidRegex(pattern: String, reason: String)
    /// The Unigram model's unknown id is outside its vocabulary.
    case invalidUnknownID(source: String, id: Int, count: Int)
    /// A configured special token (pad, EOS, a template token) has no id.
    case missingSpecialToken(source: String, token: String)
    /// `maxLength` leaves no room for the special tokens the tokenizer must add.
    case maxLengthTooShort(maxLength: Int, specialTokenCount: Int)

    public var description: String {
        switch self {
        case .noTokenizerFiles(let folder):
            "[T5Tokenizer] \(folder) has neither tokenizer.json nor spiece.model"
        case .unreadableFile(let path, let reason):
            "[T5Tokenizer] cannot read \(path): \(reason)"
        case .malformedJSON(let path, let reason):
            "[T5Tokenizer] \(path): \(reason)"
        case .malformedField(let path, let field, let reason):
            "[T5Tokenizer] \(path): \(field): \(reason)"
        case .unsupportedComponent(let path, let component, let type):
            "[T5Tokenizer] \(path): \(component) type \(type.debugDescription) is not supported"
        case .malformedSentencePieceModel(let path, let offset, let reason):
            "[T5Tokenizer] \(path): byte \(offset): \(reason)"
        case .malformedCharsMap(let source, let reason):
            "[T5Tokenizer] \(source): precompiled_charsmap: \(reason)"
        case .invalidRegex(let pattern, let reason):
            "[T5Tokenizer] Replace pattern \(pattern.debugDescription) does not compile: \(reason)"
        case .invalidUnknownID(let source, let id, let count):
            "[T5Tokenizer] \(source): unk_id \(id) is outside the \(count)-piece vocabulary"
        case .missingSpecialToken(let source, let token):
            "[T5Tokenizer] \(source): special token \(token.debugDescription) is not in the vocabulary"
        case .maxLengthTooShort(let maxLength, let count):
            "[T5Tokenizer] maxLength \(maxLength) leaves no room: the tokenizer adds \(count) special token(s)"
        }
    }
}
