/// The `ByteLevel` pre-tokenizer of tokenizers (GPT-2's): the word pattern
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`, then byte
/// spelling.
///
/// The pattern is matched by hand, alternative by alternative as a backtracking engine tries
/// them, so that its classes are exactly ``TokenizerCharacterClass``'s. Every scalar is a letter,
/// a number, whitespace or "other", so some alternative always matches where the previous match
/// ended and the matches cover the text.
///
/// Reference: Radford et al., "Language Models are Unsupervised Multitask Learners" (GPT-2).
enum ByteLevelPattern {
    /// What the pre-tokenizer makes of `piece`.
    static func preTokenize(_ piece: AlignedText, addPrefixSpace: Bool, useRegex: Bool) -> [AlignedText] {
        var text = piece
        if addPrefixSpace, let first = text.scalars.first, first != " " {
            let atOrigin = text.scalarsAtOrigin > 0 ? text.scalarsAtOrigin + 1 : 0
            text.scalars.insert(" ", at: 0)
            text.scalarsAtOrigin = atOrigin
        }
        guard !text.isEmpty else { return [] }
        var pieces = useRegex ? PreTokenizer.pieces(of: text, ranges: matches(in: text.scalars)) : [text]
        for index in pieces.indices {
            // Each byte of a scalar becomes one stand-in, aligned with the scalar.
            pieces[index].expand { scalar in String(scalar).utf8.map { ByteLevelBPE.byteSymbols[Int($0)] } }
        }
        return pieces
    }

    /// The pattern's matches, consecutive from the start.
    static func matches(in scalars: [Unicode.Scalar]) -> [Range<Int>] {
        var matches: [Range<Int>] = []
        var start = 0
        while start < scalars.count {
            let end = matchEnd(in: scalars, at: start)
            matches.append(start..<end)
            start = end
        }
        return matches
    }

    private static let contractions: [[Unicode.Scalar]] =
        ["s", "t", "re", "ve", "m", "ll", "d"].map { Array($0.unicodeScalars) }

    private static func isOther(_ scalar: Unicode.Scalar) -> Bool {
        !TokenizerCharacterClass.isPatternWhitespace(scalar) && !TokenizerCharacterClass.isLetter(scalar)
            && !TokenizerCharacterClass.isNumber(scalar)
    }

    /// End of the match starting at `start` (always at least one scalar).
    private static func matchEnd(in scalars: [Unicode.Scalar], at start: Int) -> Int {
        func runEnd(from index: Int, while accepts: (Unicode.Scalar) -> Bool) -> Int {
            var end = index
            while end < scalars.count, accepts(scalars[end]) { end += 1 }
            return end
        }
        // 's|'t|'re|'ve|'m|'ll|'d
        if scalars[start] == "'" {
            for suffix in contractions where start + 1 + suffix.count <= scalars.count
                && scalars[(start + 1)..<(start + 1 + suffix.count)].elementsEqual(suffix) {
                return start + 1 + suffix.count
            }
        }
        // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`
        let classes: [(Unicode.Scalar) -> Bool] = [
            TokenizerCharacterClass.isLetter, TokenizerCharacterClass.isNumber, isOther,
        ]
        for accepts in classes {
            let body = scalars[start] == " " ? start + 1 : start
            // A space is never in these classes, so without the optional space there is no match.
            if body < scalars.count, accepts(scalars[body]) {
                return runEnd(from: body, while: accepts)
            }
        }
        // `\s+(?!\S)`: the whitespace run, less its last scalar when text follows it.
        let whitespaceEnd = runEnd(from: start, while: TokenizerCharacterClass.isPatternWhitespace)
        if whitespaceEnd == scalars.count { return whitespaceEnd }
        if whitespaceEnd - start > 1 { return whitespaceEnd - 1 }
        // `\s+`
        return max(whitespaceEnd, start + 1)
    }
}
