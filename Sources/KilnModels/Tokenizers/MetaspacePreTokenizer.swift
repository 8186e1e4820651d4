/// A pre-tokenizer of a Hugging Face `tokenizer.json`, limited to the ones SentencePiece-based
/// tokenizers use: `Metaspace`, `WhitespaceSplit`, and a `Sequence` of them.
///
/// Metaspace is how SentencePiece marks word starts: every space becomes the replacement
/// character (`▁`), one is put in front of the text, and the text is cut before each run of
/// replacement characters, so `"▁a▁photo"` gives the words `▁a` and `▁photo`.
public indirect enum MetaspacePreTokenizer: Sendable {
    /// Each pre-tokenizer in order, each applied to every piece the previous one produced.
    case sequence([MetaspacePreTokenizer])
    /// Splits on Unicode whitespace, dropping it.
    case whitespaceSplit
    /// SentencePiece's word-boundary marking (see the type's description).
    case metaspace(replacement: Character, prependScheme: PrependScheme, split: Bool)

    /// When Metaspace puts a replacement character in front of a piece that lacks one.
    public enum PrependScheme: String, Sendable {
        /// In front of every piece.
        case always
        /// Only in front of the piece that starts the input text; text after a special token
        /// gets none (transformers' `legacy=False` T5 conversion).
        case first
        /// Never.
        case never
    }

    /// A piece of text on its way to the model.
    public struct Piece: Sendable, Equatable {
        /// The (normalized) text.
        public var text: String
        /// Whether the piece begins at the very start of the input text.
        public var startsInput: Bool
    }

    /// The pieces `piece` is cut into; empty pieces are dropped, as tokenizers does.
    public func split(_ piece: Piece) -> [Piece] {
        switch self {
        case .sequence(let steps):
            var pieces = [piece]
            for step in steps {
                pieces = pieces.flatMap(step.split)
            }
            return pieces
        case .whitespaceSplit:
            var pieces: [Piece] = []
            var current = String.UnicodeScalarView()
            var currentStartsInput = piece.startsInput
            for scalar in piece.text.unicodeScalars {
                if scalar.properties.isWhitespace {
                    if !current.isEmpty {
                        pieces.append(Piece(text: String(current), startsInput: currentStartsInput))
                        current.removeAll()
                    }
                    currentStartsInput = false
                } else {
                    current.append(scalar)
                }
            }
            if !current.isEmpty {
                pieces.append(Piece(text: String(current), startsInput: currentStartsInput))
            }
            return pieces
        case .metaspace(let replacement, let prependScheme, let split):
            let marker = replacement.unicodeScalars
            var scalars = String.UnicodeScalarView()
            for scalar in piece.text.unicodeScalars {
                if scalar == " " {
                    scalars.append(contentsOf: marker)
                } else {
                    scalars.append(scalar)
                }
            }
            let needsPrefix: Bool
            switch prependScheme {
            case .always: needsPrefix = true
            case .first: needsPrefix = piece.startsInput
            case .never: needsPrefix = false
            }
            // Empty text stays empty: there is nothing to put the marker in front of.
            if needsPrefix, !scalars.isEmpty, !scalars.starts(with: marker) {
                scalars.insert(contentsOf: marker, at: scalars.startIndex)
            }
            let text = String(scalars)
            guard !text.isEmpty else { return [] }
            guard split else { return [Piece(text: text, startsInput: piece.startsInput)] }
            return Self.splitBeforeMarkerRuns(text, marker: Array(marker), startsInput: piece.startsInput)
        }
    }

    /// Cuts before every run of `marker`, the run staying with the text after it (tokenizers'
    /// `MergedWithNext`: a marker directly after another marker does not start a new piece).
    private static func splitBeforeMarkerRuns(
        _ text: String, marker: [Unicode.Scalar], startsInput: Bool
    ) -> [Piece] {
        let scalars = Array(text.unicodeScalars)
        var pieces: [Piece] = []
        var current = String.UnicodeScalarView()
        var previousWasMarker = false
        var index = 0
        while index < scalars.count {
            let isMarker = index + marker.count <= scalars.count
                && scalars[index..<(index + marker.count)].elementsEqual(marker)
            let length = isMarker ? marker.count : 1
            if isMarker, !previousWasMarker, !current.isEmpty {
                pieces.append(Piece(text: String(current), startsInput: startsInput && pieces.isEmpty))
                current.removeAll()
            }
            current.append(contentsOf: scalars[index..<(index + length)])
            previousWasMarker = isMarker
            index += length
        }
        if !current.isEmpty {
            pieces.append(Piece(text: String(current), startsInput: startsInput && pieces.isEmpty))
        }
        return pieces
    }
}
