import Foundation

/// Any JSON value, so request bodies can be read field by field (each error names its field,
/// unknown fields are ignored) and responses built as ordered objects.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    /// Key order is kept, so responses list fields in the order they were written.
    case object([(String, JSONValue)])

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): true
        case (.bool(let a), .bool(let b)): a == b
        case (.number(let a), .number(let b)): a == b
        case (.string(let a), .string(let b)): a == b
        case (.array(let a), .array(let b)): a == b
        case (.object(let a), .object(let b)): a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: false
        }
    }

    /// The value of `key` in an object (the last one, as JSON parsers keep); nil otherwise.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let pairs) = self else { return nil }
        return pairs.last(where: { $0.0 == key })?.1
    }

    /// An object with `key` set to `value` (replacing an existing key in place).
    public func setting(_ key: String, to value: JSONValue) -> JSONValue {
        guard case .object(var pairs) = self else { return self }
        if let index = pairs.firstIndex(where: { $0.0 == key }) {
            pairs[index].1 = value
        } else {
            pairs.append((key, value))
        }
        return .object(pairs)
    }

    /// The JSON type's name, for error messages.
    var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    // MARK: Conversions

    /// A number with float precision written as its shortest decimal (7.5, not 7.5000000001).
    public static func float(_ value: Float) -> JSONValue {
        .number(Double(String(value)) ?? Double(value))
    }

    public static func integer(_ value: Int) -> JSONValue { .number(Double(value)) }
    public static func integer(_ value: UInt64) -> JSONValue { .number(Double(value)) }

    public static func optional(_ value: String?) -> JSONValue { value.map { .string($0) } ?? .null }
}

extension JSONValue {
    /// Parses a request body (an empty body is an empty object); a body that is not JSON is a
    /// 400 saying where it broke.
    public static func parse(_ data: Data) throws -> JSONValue {
        if data.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return .object([]) }
        var parser = JSONParser(bytes: [UInt8](data))
        return try parser.document()
    }

    /// Compact JSON text; keys in the order they were given.
    public func serialized() -> String {
        var text = ""
        write(to: &text)
        return text
    }

    public func data() -> Data { Data(serialized().utf8) }

    private func write(to text: inout String) {
        switch self {
        case .null: text += "null"
        case .bool(let value): text += value ? "true" : "false"
        case .number(let value): text += Self.format(value)
        case .string(let value): Self.quote(value, into: &text)
        case .array(let values):
            text += "["
            for (index, value) in values.enumerated() {
                if index > 0 { text += ", " }
                value.write(to: &text)
            }
            text += "]"
        case .object(let pairs):
            text += "{"
            for (index, (key, value)) in pairs.enumerated() {
                if index > 0 { text += ", " }
                Self.quote(key, into: &text)
                text += ": "
                value.write(to: &text)
            }
            text += "}"
        }
    }

    /// Integers without a fraction (20, not 20.0), as Python's json writes ints; non-finite
    /// numbers (which JSON lacks) as null.
    private static func format(_ value: Double) -> String {
        guard value.isFinite else { return "null" }
        if value == value.rounded(), abs(value) < 9.007e15 { return String(Int64(value)) }
        return String(value)
    }

    private static func quote(_ string: String, into text: inout String) {
        text += "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": text += "\\\""
            case "\\": text += "\\\\"
            case "\n": text += "\\n"
            case "\r": text += "\\r"
            case "\t": text += "\\t"
            case _ where scalar.value < 0x20:
                text += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count) + String(scalar.value, radix: 16)
            default: text.unicodeScalars.append(scalar)
            }
        }
        text += "\""
    }
}
