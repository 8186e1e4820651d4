/// AUTOMATIC1111's prompt syntax: emphasis and `BREAK` parsed into text fragments with weights,
/// as A1111's `prompt_parser.parse_prompt_attention` reads a prompt.
///
/// - `(text)` multiplies the weight of `text` by 1.1, `[text]` divides it by 1.1, nested ones
///   multiply again; `(text:1.3)` sets the factor to 1.3.
/// - `\(`, `\)`, `\[`, `\]` and `\\` are the characters themselves.
/// - A bracket left open applies to the end of the prompt; a closing one with nothing open, and
///   `:` not followed by a number and `)`, are text.
/// - `BREAK` (a word of its own, outside brackets) ends the current 77-token chunk.
/// - Neighbouring fragments of equal weight are joined.
///
/// ```swift
/// A1111Prompt.parse("an (important) word")   // [("an ", 1), ("important", 1.1), (" word", 1)]
/// ```
public enum A1111Prompt {
    /// One fragment: its text and weight; `BREAK` is the fragment `("BREAK", -1)`.
    public struct Fragment: Sendable, Equatable, CustomStringConvertible {
        public var text: String
        public var weight: Double

        public init(_ text: String, _ weight: Double) {
            self.text = text
            self.weight = weight
        }

        public var isBreak: Bool { text == "BREAK" && weight == -1 }
        public var description: String { "(\"\(text)\", \(weight))" }
    }

    /// The emphasis factors of round and square brackets.
    public static let roundMultiplier = 1.1
    public static let squareMultiplier = 1 / 1.1

    public static func parse(_ prompt: String) -> [Fragment] {
        var fragments: [Fragment] = []
        var round: [Int] = [], square: [Int] = []
        func multiply(from start: Int, by factor: Double) {
            for index in start..<fragments.count { fragments[index].weight *= factor }
        }
        for token in tokens(of: prompt) {
            switch token {
            case .escaped(let character): fragments.append(Fragment(character.map { String($0) } ?? "", 1))
            case .open(let isRound):
                if isRound { round.append(fragments.count) } else { square.append(fragments.count) }
            case .weightedClose(let weight, let text):
                if let start = round.popLast() { multiply(from: start, by: weight) } else { appendText(text, to: &fragments) }
            case .close(let isRound):
                if isRound, let start = round.popLast() {
                    multiply(from: start, by: roundMultiplier)
                } else if !isRound, let start = square.popLast() {
                    multiply(from: start, by: squareMultiplier)
                } else {
                    appendText(isRound ? ")" : "]", to: &fragments)
                }
            case .text(let text): appendText(text, to: &fragments)
            }
        }
        for start in round { multiply(from: start, by: roundMultiplier) }
        for start in square { multiply(from: start, by: squareMultiplier) }
        if fragments.isEmpty { fragments = [Fragment("", 1)] }
        var index = 0
        while index + 1 < fragments.count {
            if fragments[index].weight == fragments[index + 1].weight {
                fragments[index].text += fragments[index + 1].text
                fragments.remove(at: index + 1)
            } else {
                index += 1
            }
        }
        return fragments
    }

    /// The prompt's text with the syntax taken out (weights dropped, `BREAK` as a space): what
    /// models without per-token weighting (SD3's and FLUX's T5) read.
    public static func plainText(_ prompt: String) -> String {
        parse(prompt).map { $0.isBreak ? " " : $0.text }.joined()
    }

    // MARK: Tokens

    enum Token: Equatable {
        case escaped(Character?)
        case open(round: Bool)
        /// `:1.3)` with the text it came from.
        case weightedClose(Double, String)
        case close(round: Bool)
        case text(String)
    }

    /// A1111's tokens: escapes, brackets, `:number)`, runs of other text, a lone `:`.
    static func tokens(of prompt: String) -> [Token] {
        let characters = Array(prompt)
        var tokens: [Token] = []
        var index = 0
        var run = ""
        func flush() {
            if !run.isEmpty { tokens.append(.text(run)) }
            run = ""
        }
        while index < characters.count {
            let character = characters[index]
            switch character {
            case "\\":
                flush()
                if index + 1 < characters.count, "()[]\\".contains(characters[index + 1]) {
                    tokens.append(.escaped(characters[index + 1]))
                    index += 2
                } else {
                    // A lone backslash escapes nothing: A1111 keeps what follows it, the empty string.
                    tokens.append(.escaped(nil))
                    index += 1
                }
                continue
            case "(", "[":
                flush()
                tokens.append(.open(round: character == "("))
            case ")", "]":
                flush()
                tokens.append(.close(round: character == ")"))
            case ":":
                flush()
                if let (weight, end) = weightedClose(characters, from: index) {
                    tokens.append(.weightedClose(weight, String(characters[index..<end])))
                    index = end
                    continue
                }
                tokens.append(.text(":"))
            default:
                run.append(character)
            }
            index += 1
        }
        flush()
        return tokens
    }

    /// `:\s*([+-]?[.\d]+)\s*\)` at `start`: the weight and the index after the `)`.
    private static func weightedClose(_ characters: [Character], from start: Int) -> (Double, Int)? {
        var index = start + 1
        while index < characters.count, characters[index].isWhitespace { index += 1 }
        var number = ""
        if index < characters.count, characters[index] == "+" || characters[index] == "-" {
            number.append(characters[index])
            index += 1
        }
        let digitsStart = index
        while index < characters.count, characters[index] == "." || characters[index].isASCII && characters[index].isNumber {
            number.append(characters[index])
            index += 1
        }
        guard index > digitsStart else { return nil }
        while index < characters.count, characters[index].isWhitespace { index += 1 }
        guard index < characters.count, characters[index] == ")" else { return nil }
        // Python's float() of A1111's match; text such as "1.2.3" fails there too (A1111 raises).
        guard let weight = Double(number) else { return nil }
        return (weight, index + 1)
    }

    /// Text outside escapes: split at `BREAK` words into fragments with a `BREAK` between.
    private static func appendText(_ text: String, to fragments: inout [Fragment]) {
        for (index, part) in splitAtBreaks(text).enumerated() {
            if index > 0 { fragments.append(Fragment("BREAK", -1)) }
            fragments.append(Fragment(part, 1))
        }
    }

    /// `re.split(r"\s*\bBREAK\b\s*", text)`.
    static func splitAtBreaks(_ text: String) -> [String] {
        let characters = Array(text)
        var parts: [String] = [], current = ""
        var index = 0
        func isWord(_ character: Character) -> Bool { character.isLetter || character.isNumber || character == "_" }
        while index < characters.count {
            let end = index + 5
            if end <= characters.count, String(characters[index..<end]) == "BREAK",
               index == 0 || !isWord(characters[index - 1]), end == characters.count || !isWord(characters[end]) {
                while let last = current.last, last.isWhitespace { current.removeLast() }
                parts.append(current)
                current = ""
                index = end
                while index < characters.count, characters[index].isWhitespace { index += 1 }
                continue
            }
            current.append(characters[index])
            index += 1
        }
        parts.append(current)
        return parts
    }
}
