import Foundation
import KilnGraph

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a whole file with POSIX calls, so a missing file, a directory and a permission problem each
/// get their own precise error rather than Foundation's generic "couldn't be opened".
enum FileBytes {
    /// `name` is how errors refer to the file: the path as the user gave it.
    static func contents(ofPath path: String, name: String, maximumBytes: Int) throws -> Data {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        if descriptor < 0 {
            let code = errno
            if code == ENOENT { throw PNGError.notFound(path: name) }
            throw PNGError.unreadable(path: name, reason: systemMessage(code))
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw PNGError.unreadable(path: name, reason: systemMessage(errno))
        }
        if (status.st_mode & S_IFMT) == S_IFDIR {
            throw PNGError.unreadable(path: name, reason: "it is a directory")
        }
        let size = Int(status.st_size)
        guard size <= maximumBytes else {
            throw PNGError.tooLarge(path: name, detail: "the file is \(size) bytes, more than the \(maximumBytes)-byte limit")
        }
        var data = Data(count: size)
        var filled = 0
        let failure: Int32? = data.withUnsafeMutableBytes { buffer -> Int32? in
            guard let base = buffer.baseAddress else { return nil }
            while filled < size {
                let count = read(descriptor, base + filled, size - filled)
                if count < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                if count == 0 { break }
                filled += count
            }
            return nil
        }
        if let failure { throw PNGError.unreadable(path: name, reason: systemMessage(failure)) }
        // A file that shrank while being read is handed on short; the decoder reports it as truncated.
        if filled < size { data.removeSubrange(filled..<size) }
        return data
    }
}

