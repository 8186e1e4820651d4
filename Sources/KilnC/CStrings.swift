import Foundation
import Kiln

/// Conversions between C strings and Swift strings at the boundary.
enum CStrings {
    /// The string at `pointer`, or nil for NULL. Invalid UTF-8 is refused, naming `field`.
    static func optional(_ pointer: UnsafePointer<CChar>?, field: String) throws -> String? {
        guard let pointer else { return nil }
        guard let string = String(validatingCString: pointer) else {
            throw EmbeddingError("\(field) is not valid UTF-8")
        }
        return string
    }

    /// A copy of `string` in memory of its own (malloc), freed by `kiln_free_string`.
    static func copy(_ string: String) throws -> UnsafeMutablePointer<CChar> {
        guard let copy = strdup(string) else { throw PipelineError.failed("out of memory copying a string of \(string.utf8.count) bytes") }
        return copy
    }
}
