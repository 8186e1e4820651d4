import Foundation

/// Reads a caller's `struct_size`-prefixed struct (`kiln_open_options`, `kiln_request`) whatever
/// header it was compiled against.
///
/// - A struct from an older header (a size this library shipped before) is read as far as it
///   goes; the fields it lacks keep their zero defaults.
/// - A struct from a newer header is accepted only while every byte past what this library knows
///   is zero: a field it cannot honour is refused, never silently ignored.
/// - Any other size (0: the struct was never initialised) is refused.
enum VersionedStruct {
    /// `pointer`'s struct as this library's `T`. `name` is the C type's name for messages;
    /// `olderSizes` are the sizes earlier headers gave it (each ending on a field boundary).
    static func read<T>(_ pointer: UnsafePointer<T>, name: String, olderSizes: [Int], zero: T) throws -> T {
        let raw = UnsafeRawPointer(pointer)
        let size = raw.loadUnaligned(as: Int.self)
        let known = MemoryLayout<T>.size
        if size == 0 {
            throw EmbeddingError("\(name).struct_size is 0: fill the struct with \(name)_init first")
        }
        if size > known {
            let extra = UnsafeRawBufferPointer(start: raw + known, count: size - known)
            if let offset = extra.firstIndex(where: { $0 != 0 }) {
                throw EmbeddingError(
                    "\(name) is \(size) bytes from a newer kiln.h, and this library knows \(known): "
                        + "byte \(known + offset) is set, a field this library cannot honour (use a newer libkiln)")
            }
        } else if size != known && !olderSizes.contains(size) {
            throw EmbeddingError(
                "\(name).struct_size is \(size); this library reads \(known)\(olderSizes.map { " or \($0)" }.joined()) (fill it with \(name)_init)")
        }
        var value = zero
        withUnsafeMutableBytes(of: &value) { target in
            target.copyMemory(from: UnsafeRawBufferPointer(start: raw, count: min(size, known)))
        }
        return value
    }

    /// Zeroes the `size` bytes of a caller's struct and sets its `struct_size` to `size` (the
    /// caller's own `sizeof`, so nothing past its struct is written).
    static func initialise(_ pointer: UnsafeMutableRawPointer?, size: Int) {
        guard let pointer, size >= MemoryLayout<Int>.size else { return }
        memset(pointer, 0, size)
        pointer.storeBytes(of: size, as: Int.self)
    }
}
