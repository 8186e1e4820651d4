import Foundation

/// Reads the fields of a JSON request object with their types and ranges checked; every error
/// is a 422 naming the field (`steps: must be an integer, got a string`). A missing field or
/// `null` takes the default, as pydantic does for A1111's optional fields.
struct FieldReader {
    let object: JSONValue
    /// The path of this object inside the body (`override_settings.`), prefixed to field names.
    let prefix: String

    /// Reads `value`, which must be an object (400 otherwise: the body is the wrong shape).
    init(_ value: JSONValue, prefix: String = "") throws {
        guard case .object = value else {
            throw APIError(prefix.isEmpty ? .badRequest : .unprocessableContent, field: prefix.isEmpty ? nil : String(prefix.dropLast()),
                           "\(prefix.isEmpty ? "the body" : String(prefix.dropLast())) must be a JSON object, got \(value.typeName)")
        }
        object = value
        self.prefix = prefix
    }

    func name(_ key: String) -> String { prefix + key }

    /// The value of `key`, nil when absent or null.
    func value(_ key: String) -> JSONValue? {
        guard let value = object[key], value != .null else { return nil }
        return value
    }

    func has(_ key: String) -> Bool { value(key) != nil }

    func string(_ key: String) throws -> String? {
        guard let value = value(key) else { return nil }
        guard case .string(let string) = value else { throw APIError.invalid(name(key), "must be a string, got \(value.typeName)") }
        return string
    }

    func string(_ key: String, default fallback: String) throws -> String { try string(key) ?? fallback }

    /// A string of at most `maximumLength` characters.
    func text(_ key: String, default fallback: String, maximumLength: Int) throws -> String {
        let text = try string(key) ?? fallback
        if text.count > maximumLength { throw APIError.invalid(name(key), "\(text.count) characters; at most \(maximumLength)") }
        return text
    }

    func bool(_ key: String) throws -> Bool? {
        guard let value = value(key) else { return nil }
        switch value {
        case .bool(let flag): return flag
        // pydantic (A1111's validator) takes 0 and 1 for booleans; so does Kiln.
        case .number(let number) where number == 0 || number == 1: return number == 1
        default: throw APIError.invalid(name(key), "must be true or false, got \(value.typeName)")
        }
    }

    func bool(_ key: String, default fallback: Bool) throws -> Bool { try bool(key) ?? fallback }

    func number(_ key: String) throws -> Double? {
        guard let value = value(key) else { return nil }
        switch value {
        case .number(let number) where number.isFinite: return number
        // pydantic coerces numeric strings ("7.5"); clients built on A1111's UI send them.
        case .string(let text) where Double(text.trimmingCharacters(in: .whitespaces))?.isFinite == true:
            return Double(text.trimmingCharacters(in: .whitespaces))
        default: throw APIError.invalid(name(key), "must be a number, got \(value.typeName)")
        }
    }

    /// A number in `range`.
    func number(_ key: String, default fallback: Double, in range: ClosedRange<Double>) throws -> Double {
        let number = try self.number(key) ?? fallback
        guard range.contains(number) else {
            throw APIError.invalid(name(key), "\(Self.format(number)) is outside \(Self.format(range.lowerBound))...\(Self.format(range.upperBound))")
        }
        return number
    }

    func integer(_ key: String) throws -> Int? {
        guard let number = try number(key) else { return nil }
        guard number == number.rounded(), abs(number) < 9.0e15 else {
            throw APIError.invalid(name(key), "must be an integer, got \(Self.format(number))")
        }
        return Int(number)
    }

    /// An integer in `range`.
    func integer(_ key: String, default fallback: Int, in range: ClosedRange<Int>) throws -> Int {
        let number = try integer(key) ?? fallback
        guard range.contains(number) else { throw APIError.invalid(name(key), "\(number) is outside \(range.lowerBound)...\(range.upperBound)") }
        return number
    }

    func array(_ key: String) throws -> [JSONValue]? {
        guard let value = value(key) else { return nil }
        guard case .array(let values) = value else { throw APIError.invalid(name(key), "must be an array, got \(value.typeName)") }
        return values
    }

    func object(_ key: String) throws -> FieldReader? {
        guard let value = value(key) else { return nil }
        return try FieldReader(value, prefix: name(key) + ".")
    }

    /// Refuses `key` unless it is absent or equal to `neutral` (a feature Kiln lacks, asked for).
    func requireNeutral(_ key: String, _ neutral: Double, because reason: String) throws {
        if let number = try number(key), number != neutral {
            throw APIError.invalid(name(key), "\(Self.format(number)) asks for \(reason), which Kiln does not do (send \(Self.format(neutral)) or leave it out)")
        }
    }

    func requireFalse(_ key: String, because reason: String) throws {
        if try bool(key) == true { throw APIError.invalid(name(key), "true asks for \(reason), which Kiln does not do") }
    }

    static func format(_ number: Double) -> String {
        number == number.rounded() && abs(number) < 1e15 ? String(Int64(number)) : String(number)
    }
}
