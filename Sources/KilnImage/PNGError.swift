/// Why a PNG could not be read or written. Every case names the file (or `<memory>` for data) and
/// what was wrong, so the description can be shown to a user as is.
public enum PNGError: Error, CustomStringConvertible, Equatable, Sendable {
    /// Nothing exists at the path.
    case notFound(path: String)
    /// It exists but could not be read (permissions, a directory, an I/O error).
    case unreadable(path: String, reason: String)
    /// The first bytes are not the PNG signature.
    case notPNG(path: String)
    /// The data ends before the image does.
    case truncated(path: String, detail: String)
    /// libpng rejected the data: bad CRC, bad zlib stream, invalid header values, ...
    case corrupt(path: String, detail: String)
    /// A valid PNG that KilnImage does not handle, or an image PNG cannot store.
    case unsupported(path: String, detail: String)
    /// Decoding would need more memory than the caller's limit allows; checked before allocating.
    case tooLarge(path: String, detail: String)
    /// Decoding or encoding ran out of memory.
    case outOfMemory(path: String)
    /// A `PNGImage` whose sizes and pixel count disagree.
    case invalidImage(detail: String)
    /// A text chunk that PNG cannot store as given.
    case invalidText(keyword: String, detail: String)
    /// Writing failed; the destination was left as it was and no temporary file remains.
    case writeFailed(path: String, detail: String)

    public var description: String {
        switch self {
        case .notFound(let path): "\(path): no such file"
        case .unreadable(let path, let reason): "\(path): cannot read: \(reason)"
        case .notPNG(let path): "\(path): not a PNG file (the PNG signature is missing)"
        case .truncated(let path, let detail): "\(path): truncated PNG: \(detail)"
        case .corrupt(let path, let detail): "\(path): corrupt PNG: \(detail)"
        case .unsupported(let path, let detail): "\(path): unsupported PNG: \(detail)"
        case .tooLarge(let path, let detail): "\(path): image too large: \(detail)"
        case .outOfMemory(let path): "\(path): out of memory while decoding or encoding"
        case .invalidImage(let detail): "invalid image: \(detail)"
        case .invalidText(let keyword, let detail): "text chunk '\(keyword)': \(detail)"
        case .writeFailed(let path, let detail): "\(path): cannot write: \(detail)"
        }
    }
}
