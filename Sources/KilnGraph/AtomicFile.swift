import Foundation

#if canImport(Glibc)
import Glibc
private let systemWrite = Glibc.write
#elseif canImport(Darwin)
import Darwin
private let systemWrite = Darwin.write
#endif

/// Replaces a file so that readers see either the old bytes or all of the new ones, never a
/// partial file (image, latents, cache entry), even if the process dies or the disk fills up
/// mid-write.
public enum AtomicFile {
    /// Why a write failed: the destination as the caller named it, the step, the system's reason.
    public struct WriteError: Error, CustomStringConvertible {
        public let path: String
        public let detail: String
        public var description: String { "\(path): \(detail)" }
    }

    public static func write(_ data: Data, to url: URL) throws {
        try write(data, toPath: url.path, name: url.path)
    }

    /// `name` is how errors refer to the destination: the path as the user gave it.
    public static func write(_ data: Data, toPath path: String, name: String) throws {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        // Hidden and in the destination's directory: rename(2) is only atomic within one file system.
        let stem = "." + String(url.lastPathComponent.prefix(100)) + ".kiln-"
        var temporaryPath = ""
        var descriptor: Int32 = -1
        for _ in 0..<16 {
            temporaryPath = directory + "/" + stem + String(UInt64.random(in: 0...UInt64.max), radix: 36) + ".tmp"
            // O_EXCL: never adopt a file someone else made; mode 0666 lets the umask decide, as for any new file.
            descriptor = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
            if descriptor >= 0 || errno != EEXIST { break }
        }
        guard descriptor >= 0 else {
            throw WriteError(path: name, detail: "cannot create a temporary file in \(directory): \(systemMessage(errno))")
        }

        func fail(_ step: String, _ code: Int32) -> WriteError {
            if descriptor >= 0 { close(descriptor) }
            unlink(temporaryPath)
            return WriteError(path: name, detail: "\(step): \(systemMessage(code))")
        }

        let writeError: Int32? = data.withUnsafeBytes { raw -> Int32? in
            guard let base = raw.baseAddress else { return nil }
            var offset = 0
            while offset < raw.count {
                let written = systemWrite(descriptor, base + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                offset += written
            }
            return nil
        }
        if let writeError { throw fail("writing the temporary file", writeError) }
        if fsync(descriptor) != 0 { throw fail("flushing the temporary file", errno) }
        let closed = close(descriptor)
        descriptor = -1
        if closed != 0 { throw fail("closing the temporary file", errno) }
        if rename(temporaryPath, path) != 0 { throw fail("renaming the temporary file over the destination", errno) }

        // Makes the rename itself durable; a failure here cannot undo it, so it is not reported.
        let directoryDescriptor = open(directory, O_RDONLY | O_CLOEXEC)
        if directoryDescriptor >= 0 {
            _ = fsync(directoryDescriptor)
            close(directoryDescriptor)
        }
    }
}

/// The C library's text for an errno value.
public func systemMessage(_ code: Int32) -> String {
    String(cString: strerror(code))
}
