import Foundation

/// The model `kiln_open(NULL, ...)` (and Python's `kiln.Pipeline(None)`) opens: the one place a
/// built-in default model plugs in. None is built in yet, so asking for it is bad input.
enum DefaultModel {
    /// Where the default model's folder is, or an error saying there is none.
    static func location() throws -> URL {
        throw EmbeddingError("no default model is built in yet; pass a model path")
    }
}
