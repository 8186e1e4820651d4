import Foundation

/// Reading tokenizer files (tokenizer.json and its configs, spiece.model) with errors that name
/// the file and the field. JSON is parsed with ``ExactJSONParser`` so that scores keep their
/// exact values.
enum TokenizerFile {
    /// The top-level object of a JSON file.
    static func object(at url: URL) throws -> [String: Any] {
        let data = try bytes(at: url)
        let parsed: Any
        do {
            parsed = try ExactJSONParser.parse(data)
        } catch {
            throw T5TokenizerError.malformedJSON(path: url.path, reason: "invalid JSON (\(error))")
        }
        guard let object = parsed as? [String: Any] else {
            throw T5TokenizerError.malformedJSON(path: url.path, reason: "expected a JSON object at the top level")
        }
        return object
    }

    /// The value unless it is absent or JSON `null`.
    static func nonNull(_ value: Any?) -> Any? {
        guard let value, !(value is ExactJSONParser.JSONNull) else { return nil }
        return value
    }

    /// A JSON number as the nearest `Double`.
    static func double(_ value: Any) -> Double? {
        (value as? JSONNumber)?.double
    }

    /// A JSON number that is a whole number (`3` or `3.0`).
    static func int(_ value: Any) -> Int? {
        guard let number = value as? JSONNumber else { return nil }
        if let int = Int(number.text) { return int }
        guard let double = number.double, double == double.rounded(), abs(double) < 9.0e15 else { return nil }
        return Int(double)
    }

    /// A JSON boolean.
    static func bool(_ value: Any) -> Bool? {
        value as? Bool
    }

    /// Typed access to the fields of one file's objects; `name` is the dotted path used in
    /// error messages.
    struct Fields {
        let path: String

        func object(_ object: [String: Any], _ name: String) throws -> [String: Any] {
            guard let value = object[lastComponent(name)] as? [String: Any] else {
                throw missingOrWrong(object, name, "an object")
            }
            return value
        }

        func array(_ object: [String: Any], _ name: String) throws -> [Any] {
            guard let value = object[lastComponent(name)] as? [Any] else {
                throw missingOrWrong(object, name, "an array")
            }
            return value
        }

        func string(_ object: [String: Any], _ name: String) throws -> String {
            guard let value = object[lastComponent(name)] as? String else {
                throw missingOrWrong(object, name, "a string")
            }
            return value
        }

        func int(_ object: [String: Any], _ name: String) throws -> Int {
            guard let value = object[lastComponent(name)], let int = TokenizerFile.int(value) else {
                throw missingOrWrong(object, name, "an integer")
            }
            return int
        }

        func optionalInt(_ object: [String: Any], _ name: String) throws -> Int? {
            guard let value = TokenizerFile.nonNull(object[lastComponent(name)]) else { return nil }
            guard let int = TokenizerFile.int(value) else { throw missingOrWrong(object, name, "an integer") }
            return int
        }

        func optionalBool(_ object: [String: Any], _ name: String) throws -> Bool? {
            guard let value = TokenizerFile.nonNull(object[lastComponent(name)]) else { return nil }
            guard let bool = TokenizerFile.bool(value) else { throw missingOrWrong(object, name, "true or false") }
            return bool
        }

        func optionalString(_ object: [String: Any], _ name: String) throws -> String? {
            guard let value = TokenizerFile.nonNull(object[lastComponent(name)]) else { return nil }
            guard let string = value as? String else { throw missingOrWrong(object, name, "a string") }
            return string
        }

        private func lastComponent(_ name: String) -> String {
            String(name.split(separator: ".").last ?? Substring(name))
        }

        private func missingOrWrong(_ object: [String: Any], _ name: String, _ expected: String) -> T5TokenizerError {
            let reason = object[lastComponent(name)] == nil ? "missing, expected \(expected)" : "expected \(expected)"
            return T5TokenizerError.malformedField(path: path, field: name, reason: reason)
        }
    }

    /// A tokenizer file's bytes; a missing or unreadable file is ``T5TokenizerError/unreadableFile(path:reason:)``.
    static func bytes(at url: URL) throws -> [UInt8] {
        do {
            return Array(try Data(contentsOf: url))
        } catch {
            let reason = FileManager.default.fileExists(atPath: url.path) ? error.localizedDescription : "no such file"
            throw T5TokenizerError.unreadableFile(path: url.path, reason: reason)
        }
    }
}
