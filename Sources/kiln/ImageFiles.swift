import Foundation
import Kiln

/// Input images named on the command line. A file that cannot be read or converted is bad
/// input (exit code 2), naming the option and the path.
enum ImageFiles {
    static func read(_ path: String, option: String, as convert: (PNGImage) throws -> ShapedArray) throws -> ShapedArray {
        do {
            return try convert(try PNGImage(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw CommandFailure.badInput("\(option) \(path): \(error)")
        }
    }
}
