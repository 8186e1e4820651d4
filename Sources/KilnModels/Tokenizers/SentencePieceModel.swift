import Foundation

/// The parts of a SentencePiece `spiece.model` (a serialized `sentencepiece.ModelProto`) that a
/// Unigram tokenizer needs, read with a minimal protocol-buffer decoder.
///
/// Fields (proto2, from sentencepiece_model.proto): `ModelProto.pieces = 1` (`piece = 1`,
/// `score = 2` float, `type = 3`), `trainer_spec = 2` (`model_type = 3`, `unk_id = 40`,
/// `byte_fallback = 35`), `normalizer_spec = 3` (`name = 1`, `precompiled_charsmap = 2`,
/// `add_dummy_prefix = 3`, `remove_extra_whitespaces = 4`, `escape_whitespaces = 5`). Absent
/// fields take the proto defaults. Other fields are skipped.
public struct SentencePieceModel: Sendable, Equatable {
    /// What a piece is for.
    public enum PieceType: Int, Sendable {
        case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    /// One vocabulary entry.
    public struct Piece: Sendable, Equatable {
        /// The piece text, `▁` marking a word start.
        public var text: String
        /// Its log probability.
        public var score: Float
        /// Its kind.
        public var type: PieceType
    }

    /// The vocabulary, indexed by id.
    public var pieces: [Piece] = []
    /// `TrainerSpec.model_type`: 1 Unigram, 2 BPE, 3 word, 4 char.
    public var modelType = 1
    /// `TrainerSpec.unk_id`.
    public var unknownID = 0
    /// `TrainerSpec.byte_fallback`.
    public var byteFallback = false
    /// `NormalizerSpec.name`, such as `nmt_nfkc`.
    public var normalizerName = ""
    /// `NormalizerSpec.precompiled_charsmap` (see ``PrecompiledCharsMap``).
    public var precompiledCharsMap: [UInt8] = []
    /// `NormalizerSpec.add_dummy_prefix`. transformers' conversion to `T5TokenizerFast` does not
    /// consult it (the prefix comes from the tokenizer's `add_prefix_space`), nor does Kiln.
    public var addDummyPrefix = true
    /// `NormalizerSpec.remove_extra_whitespaces` (likewise not consulted by the conversion,
    /// which always strips and collapses spaces).
    public var removeExtraWhitespaces = true
    /// `NormalizerSpec.escape_whitespaces` (likewise; the conversion always uses `▁`).
    public var escapeWhitespaces = true

    /// Reads and decodes `url`.
    ///
    /// - Throws: ``T5TokenizerError/unreadableFile(path:reason:)`` or
    ///   ``T5TokenizerError/malformedSentencePieceModel(path:offset:reason:)`` with the byte
    ///   offset where decoding failed.
    public init(url: URL) throws {
        try self.init(bytes: TokenizerFile.bytes(at: url), path: url.path)
    }

    /// Decodes a serialized `ModelProto`; `path` is only used in error messages.
    public init(bytes: [UInt8], path: String) throws {
        var reader = ProtobufReader(bytes: bytes[...], path: path)
        while let field = try reader.nextField() {
            switch (field.number, field.value) {
            case (1, .bytes(let message)):
                pieces.append(try Self.piece(from: message, path: path))
            case (2, .bytes(let message)):
                try readTrainerSpec(message, path: path)
            case (3, .bytes(let message)):
                try readNormalizerSpec(message, path: path)
            case (1...3, _):
                throw T5TokenizerError.malformedSentencePieceModel(
                    path: path, offset: field.offset, reason: "field \(field.number) is not a length-delimited message")
            default:
                continue
            }
        }
        guard !pieces.isEmpty else {
            throw T5TokenizerError.malformedSentencePieceModel(path: path, offset: 0, reason: "no pieces")
        }
    }

    private static func piece(from bytes: ArraySlice<UInt8>, path: String) throws -> Piece {
        var reader = ProtobufReader(bytes: bytes, path: path)
        var piece = Piece(text: "", score: 0, type: .normal)
        while let field = try reader.nextField() {
            switch (field.number, field.value) {
            case (1, .bytes(let text)):
                guard let string = String(validating: text, as: UTF8.self) else {
                    throw T5TokenizerError.malformedSentencePieceModel(
                        path: path, offset: field.offset, reason: "piece text is not valid UTF-8")
                }
                piece.text = string
            case (2, .fixed32(let bits)):
                piece.score = Float(bitPattern: bits)
            case (3, .varint(let raw)):
                guard let type = PieceType(rawValue: Int(truncatingIfNeeded: raw)) else {
                    throw T5TokenizerError.malformedSentencePieceModel(
                        path: path, offset: field.offset, reason: "unknown piece type \(raw)")
                }
                piece.type = type
            case (1...3, _):
                throw T5TokenizerError.malformedSentencePieceModel(
                    path: path, offset: field.offset, reason: "piece field \(field.number) has the wrong wire type")
            default:
                continue
            }
        }
        return piece
    }

    private mutating func readTrainerSpec(_ bytes: ArraySlice<UInt8>, path: String) throws {
        var reader = ProtobufReader(bytes: bytes, path: path)
        while let field = try reader.nextField() {
            switch (field.number, field.value) {
            case (3, .varint(let value)): modelType = Int(truncatingIfNeeded: value)
            case (40, .varint(let value)): unknownID = Int(Int32(truncatingIfNeeded: value))
            case (35, .varint(let value)): byteFallback = value != 0
            default: continue
            }
        }
    }

    private mutating func readNormalizerSpec(_ bytes: ArraySlice<UInt8>, path: String) throws {
        var reader = ProtobufReader(bytes: bytes, path: path)
        while let field = try reader.nextField() {
            switch (field.number, field.value) {
            case (1, .bytes(let text)): normalizerName = String(decoding: text, as: UTF8.self)
            case (2, .bytes(let blob)): precompiledCharsMap = Array(blob)
            case (3, .varint(let value)): addDummyPrefix = value != 0
            case (4, .varint(let value)): removeExtraWhitespaces = value != 0
            case (5, .varint(let value)): escapeWhitespaces = value != 0
            default: continue
            }
        }
    }
}

/// A protocol-buffer wire-format reader over one message's bytes.
struct ProtobufReader {
    enum Value {
        case varint(UInt64)
        case fixed64(UInt64)
        case bytes(ArraySlice<UInt8>)
        case fixed32(UInt32)
    }

    struct Field {
        var number: Int
        var value: Value
        /// Byte offset of the field's key in the file.
        var offset: Int
    }

    private let bytes: ArraySlice<UInt8>
    private let path: String
    private var position: Int

    init(bytes: ArraySlice<UInt8>, path: String) {
        self.bytes = bytes
        self.path = path
        self.position = bytes.startIndex
    }

    /// The next field, or nil at the end of the message.
    mutating func nextField() throws -> Field? {
        guard position < bytes.endIndex else { return nil }
        let offset = position
        let key = try varint()
        let number = Int(key >> 3)
        guard number > 0 else { throw error(at: offset, "field number 0") }
        switch key & 7 {
        case 0:
            return Field(number: number, value: .varint(try varint()), offset: offset)
        case 1:
            let value = try fixed(width: 8)
            return Field(number: number, value: .fixed64(value), offset: offset)
        case 2:
            let length = try varint()
            guard length <= UInt64(bytes.endIndex - position) else {
                throw error(at: offset, "field \(number) claims \(length) bytes, \(bytes.endIndex - position) remain")
            }
            let value = bytes[position..<(position + Int(length))]
            position += Int(length)
            return Field(number: number, value: .bytes(value), offset: offset)
        case 5:
            let value = try fixed(width: 4)
            return Field(number: number, value: .fixed32(UInt32(value)), offset: offset)
        default:
            throw error(at: offset, "field \(number) has unsupported wire type \(key & 7)")
        }
    }

    private mutating func varint() throws -> UInt64 {
        let start = position
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while position < bytes.endIndex {
            let byte = bytes[position]
            position += 1
            guard shift < 64 else { throw error(at: start, "varint longer than 10 bytes") }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
        throw error(at: start, "truncated varint")
    }

    private mutating func fixed(width: Int) throws -> UInt64 {
        guard bytes.endIndex - position >= width else {
            throw error(at: position, "truncated \(width)-byte value")
        }
        var value: UInt64 = 0
        for index in 0..<width {
            value |= UInt64(bytes[position + index]) << (8 * UInt64(index))
        }
        position += width
        return value
    }

    private func error(at offset: Int, _ reason: String) -> T5TokenizerError {
        .malformedSentencePieceModel(path: path, offset: offset, reason: reason)
    }
}
