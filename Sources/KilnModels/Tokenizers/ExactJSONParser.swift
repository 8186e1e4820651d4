/// A JSON number kept as its source text, so it converts to `Double` correctly rounded.
///
/// Foundation's JSON readers on Linux round some decimal numbers to a neighbouring `Double`
/// (`-2.4490883350372314` reads back as `-2.4490883350372306`), which would change Unigram
/// scores and so which of two equal-scoring segmentations wins.
public struct JSONNumber: Equatable, Sendable {
    /// The number exactly as written in the file.
    public let text: String

    /// The nearest `Double` (Swift's parser rounds correctly).
    public var double: Double? { Double(text) }
}

/// A strict JSON (RFC 8259) parser giving `[String: Any]`, `[Any]`, `String`, `Bool`,
/// ``JSONNull`` and ``JSONNumber`` values.
public struct ExactJSONParser {
    /// Why the text is not JSON, and where.
    public struct SyntaxError: Error, CustomStringConvertible {
        public let offset: Int
        public let reason: String
        public var description: String { "byte \(offset): \(reason)" }
    }

    /// JSON `null`.
    public struct JSONNull: Equatable, Sendable {}

    private let bytes: [UInt8]
    private var position = 0

    /// Parses a whole document.
    public static func parse(_ bytes: [UInt8]) throws -> Any {
        var parser = ExactJSONParser(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.value(depth: 0)
        parser.skipWhitespace()
        guard parser.position == bytes.count else {
            throw SyntaxError(offset: parser.position, reason: "unexpected text after the document")
        }
        return value
    }

    private init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    private mutating func value(depth: Int) throws -> Any {
        guard depth < 512 else { throw SyntaxError(offset: position, reason: "nesting deeper than 512") }
        guard position < bytes.count else { throw SyntaxError(offset: position, reason: "unexpected end of text") }
        switch bytes[position] {
        case UInt8(ascii: "{"): return try object(depth: depth)
        case UInt8(ascii: "["): return try array(depth: depth)
        case UInt8(ascii: "\""): return try string()
        case UInt8(ascii: "t"): try literal("true"); return true
        case UInt8(ascii: "f"): try literal("false"); return false
        case UInt8(ascii: "n"): try literal("null"); return JSONNull()
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        default: throw SyntaxError(offset: position, reason: "unexpected character \(Self.describe(bytes[position]))")
        }
    }

    private mutating func object(depth: Int) throws -> [String: Any] {
        position += 1
        var result: [String: Any] = [:]
        skipWhitespace()
        if consume("}") { return result }
        while true {
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
                throw SyntaxError(offset: position, reason: "expected a string key")
            }
            let key = try string()
            skipWhitespace()
            guard consume(":") else { throw SyntaxError(offset: position, reason: "expected ':'") }
            skipWhitespace()
            result[key] = try value(depth: depth + 1)
            skipWhitespace()
            if consume(",") { continue }
            if consume("}") { return result }
            throw SyntaxError(offset: position, reason: "expected ',' or '}'")
        }
    }

    private mutating func array(depth: Int) throws -> [Any] {
        position += 1
        var result: [Any] = []
        skipWhitespace()
        if consume("]") { return result }
        while true {
            skipWhitespace()
            result.append(try value(depth: depth + 1))
            skipWhitespace()
            if consume(",") { continue }
            if consume("]") { return result }
            throw SyntaxError(offset: position, reason: "expected ',' or ']'")
        }
    }

    private mutating func string() throws -> String {
        let start = position
        position += 1
        var utf8: [UInt8] = []
        while position < bytes.count {
            let byte = bytes[position]
            position += 1
            switch byte {
            case UInt8(ascii: "\""):
                guard let text = String(validating: utf8, as: UTF8.self) else {
                    throw SyntaxError(offset: start, reason: "string is not valid UTF-8")
                }
                return text
            case UInt8(ascii: "\\"):
                try escape(into: &utf8)
            case 0..<0x20:
                throw SyntaxError(offset: position - 1, reason: "unescaped control character in a string")
            default:
                utf8.append(byte)
            }
        }
        throw SyntaxError(offset: start, reason: "unterminated string")
    }

    private mutating func escape(into utf8: inout [UInt8]) throws {
        guard position < bytes.count else { throw SyntaxError(offset: position, reason: "unterminated escape") }
        let byte = bytes[position]
        position += 1
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(byte)
        case UInt8(ascii: "b"): utf8.append(0x08)
        case UInt8(ascii: "f"): utf8.append(0x0C)
        case UInt8(ascii: "n"): utf8.append(0x0A)
        case UInt8(ascii: "r"): utf8.append(0x0D)
        case UInt8(ascii: "t"): utf8.append(0x09)
        case UInt8(ascii: "u"):
            var code = try hexQuad()
            if (0xD800..<0xDC00).contains(code) {
                // A high surrogate must be followed by an escaped low surrogate.
                guard position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"),
                      bytes[position + 1] == UInt8(ascii: "u") else {
                    throw SyntaxError(offset: position, reason: "unpaired surrogate \\u\(String(code, radix: 16))")
                }
                position += 2
                let low = try hexQuad()
                guard (0xDC00..<0xE000).contains(low) else {
                    throw SyntaxError(offset: position - 6, reason: "expected a low surrogate")
                }
                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00..<0xE000).contains(code) {
                throw SyntaxError(offset: position - 6, reason: "unpaired low surrogate")
            }
            guard let scalar = Unicode.Scalar(code) else {
                throw SyntaxError(offset: position - 6, reason: "invalid code point")
            }
            utf8 += Array(String(scalar).utf8)
        default:
            throw SyntaxError(offset: position - 1, reason: "invalid escape \\\(Self.describe(byte))")
        }
    }

    private mutating func hexQuad() throws -> UInt32 {
        guard position + 4 <= bytes.count,
              let text = String(validating: bytes[position..<(position + 4)], as: UTF8.self),
              let value = UInt32(text, radix: 16) else {
            throw SyntaxError(offset: position, reason: "expected four hex digits")
        }
        position += 4
        return value
    }

    private mutating func number() throws -> JSONNumber {
        let start = position
        func digits() -> Int {
            let from = position
            while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) {
                position += 1
            }
            return position - from
        }
        if bytes[position] == UInt8(ascii: "-") { position += 1 }
        let integerStart = position
        guard digits() > 0 else { throw SyntaxError(offset: start, reason: "invalid number") }
        if bytes[integerStart] == UInt8(ascii: "0"), position - integerStart > 1 {
            throw SyntaxError(offset: start, reason: "number with a leading zero")
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            position += 1
            guard digits() > 0 else { throw SyntaxError(offset: start, reason: "invalid number") }
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
            position += 1
            if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") {
                position += 1
            }
            guard digits() > 0 else { throw SyntaxError(offset: start, reason: "invalid number") }
        }
        return JSONNumber(text: String(decoding: bytes[start..<position], as: UTF8.self))
    }

    private mutating func literal(_ word: StaticString) throws {
        let count = word.utf8CodeUnitCount
        let expected = UnsafeBufferPointer(start: word.utf8Start, count: count)
        guard position + count <= bytes.count, bytes[position..<(position + count)].elementsEqual(expected) else {
            throw SyntaxError(offset: position, reason: "invalid literal")
        }
        position += count
    }

    private mutating func consume(_ character: Unicode.Scalar) -> Bool {
        guard position < bytes.count, bytes[position] == UInt8(ascii: character) else { return false }
        position += 1
        return true
    }

    private mutating func skipWhitespace() {
        while position < bytes.count,
              bytes[position] == 0x20 || bytes[position] == 0x0A || bytes[position] == 0x0D || bytes[position] == 0x09 {
            position += 1
        }
    }

    private static func describe(_ byte: UInt8) -> String {
        (0x20..<0x7F).contains(byte) ? "'\(Character(Unicode.Scalar(byte)))'" : "0x\(String(byte, radix: 16))"
    }
}
