import Foundation

/// A `.safetensors` file (https://github.com/huggingface/safetensors): an 8-byte little-endian
/// header length, a JSON header mapping names to dtype, shape and byte range, then the data.
/// The file is memory-mapped; the header is validated completely before any tensor is read, so
/// a damaged or hostile file produces a `SafeTensorsError`, never a crash or an out-of-bounds read.
///
/// ```swift
/// let file = try SafeTensorsFile(url: url)
/// let weight = try file.tensor("conv_in.weight")   // [320, 4, 3, 3], f32 values, dtype per file
/// ```
public struct SafeTensorsFile: Sendable {
    /// One tensor's entry in the header.
    public struct Entry: Sendable, Equatable {
        public let dtype: String
        public let shape: Shape
        /// Byte range inside the data section.
        public let range: Range<Int>
    }

    public let url: URL
    public let entries: [String: Entry]
    public let metadata: [String: String]
    private let data: Data
    private let dataStart: Int

    /// Element sizes of the dtypes Kiln reads.
    static let elementBytes: [String: Int] = ["F32": 4, "F16": 2, "BF16": 2, "I32": 4, "I64": 8, "F64": 8, "U8": 1, "I8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1]
    static let maximumHeaderBytes = 100 << 20

    public init(url: URL) throws {
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .alwaysMapped)
        } catch {
            throw SafeTensorsError(file: url.path, tensor: nil, message: "cannot read: \(error.localizedDescription)")
        }
        try self.init(data: data, url: url)
    }

    /// Reads a safetensors file already in memory, checked as `init(url:)` checks a file; `url`
    /// names it in errors. What fuzzing and callers with bytes from elsewhere use.
    public init(data bytes: Data, url: URL) throws {
        self.url = url
        // Offsets below count from 0; a slice of a larger Data starts elsewhere.
        let data = bytes.startIndex == 0 ? bytes : bytes.withUnsafeBytes { Data($0) }
        self.data = data
        let path = url.path
        guard data.count >= 8 else {
            throw SafeTensorsError(file: path, tensor: nil, message: "\(data.count) bytes is too short for a safetensors header")
        }
        let headerLength = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard headerLength <= UInt64(Self.maximumHeaderBytes), 8 + Int(headerLength) <= data.count else {
            throw SafeTensorsError(file: path, tensor: nil, message: "header length \(headerLength) exceeds the file (\(data.count) bytes) or 100 MB")
        }
        dataStart = 8 + Int(headerLength)
        guard let header = try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<dataStart)) as? [String: Any] else {
            throw SafeTensorsError(file: path, tensor: nil, message: "header is not a JSON object")
        }
        var entries: [String: Entry] = [:]
        var metadata: [String: String] = [:]
        let dataBytes = data.count - dataStart
        for (name, value) in header {
            if name == "__metadata__" {
                guard let pairs = value as? [String: Any] else {
                    throw SafeTensorsError(file: path, tensor: nil, message: "__metadata__ is not an object")
                }
                for (key, item) in pairs {
                    guard let text = item as? String else {
                        throw SafeTensorsError(file: path, tensor: nil, message: "__metadata__ value for '\(key)' is not a string")
                    }
                    metadata[key] = text
                }
                continue
            }
            guard let fields = value as? [String: Any], let dtype = fields["dtype"] as? String,
                  let dimensions = fields["shape"] as? [Int], let offsets = fields["data_offsets"] as? [Int], offsets.count == 2
            else { throw SafeTensorsError(file: path, tensor: name, message: "entry needs dtype, shape and two data_offsets") }
            guard let size = Self.elementBytes[dtype] else {
                throw SafeTensorsError(file: path, tensor: name, message: "unsupported dtype \(dtype)")
            }
            guard dimensions.allSatisfy({ $0 >= 0 }), offsets[0] >= 0, offsets[0] <= offsets[1], offsets[1] <= dataBytes else {
                throw SafeTensorsError(file: path, tensor: name, message: "data_offsets \(offsets) outside the \(dataBytes)-byte data section or negative shape \(dimensions)")
            }
            let shape = Shape(dimensions)
            // Multiplied with overflow checks: `Shape.elementCount` would trap on a hostile shape.
            guard let bytes = Self.byteCount(dimensions, elementBytes: size) else {
                throw SafeTensorsError(file: path, tensor: name, message: "\(dtype) \(shape) is too large to address")
            }
            guard bytes == offsets[1] - offsets[0] else {
                throw SafeTensorsError(file: path, tensor: name, message: "\(dtype) \(shape) needs \(bytes) bytes, data_offsets give \(offsets[1] - offsets[0])")
            }
            entries[name] = Entry(dtype: dtype, shape: shape, range: offsets[0]..<offsets[1])
        }
        let sorted = entries.sorted { $0.value.range.lowerBound < $1.value.range.lowerBound }
        for (previous, next) in zip(sorted, sorted.dropFirst()) where previous.value.range.overlaps(next.value.range) {
            throw SafeTensorsError(file: path, tensor: next.key, message: "bytes overlap tensor '\(previous.key)'")
        }
        self.entries = entries
        self.metadata = metadata
    }

    /// Tensor names, sorted.
    public var names: [String] { entries.keys.sorted() }

    /// The stored dtype (`F32`, `F16`, `BF16`, `I32`, `I64`, `F64`, ...) and shape of `name`,
    /// read from the header without touching the data.
    public func info(_ name: String) throws -> (dtype: String, shape: Shape) {
        guard let entry = entries[name] else {
            throw SafeTensorsError(file: url.path, tensor: name, message: "no such tensor")
        }
        return (entry.dtype, entry.shape)
    }

    /// `product(dimensions) * elementBytes`, or nil when it overflows `Int`.
    static func byteCount(_ dimensions: [Int], elementBytes: Int) -> Int? {
        var total = elementBytes
        for dimension in dimensions {
            let (product, overflow) = total.multipliedReportingOverflow(by: dimension)
            if overflow { return nil }
            total = product
        }
        return total
    }

    /// Values as f32 (F16/BF16/F64/F8 converted) with `dtype` set to the stored float type (f16
    /// for the 8-bit floats, which it holds exactly), or
    /// int32 (I64 range-checked).
    public func tensor(_ name: String) throws -> HostTensor {
        guard let entry = entries[name] else {
            throw SafeTensorsError(file: url.path, tensor: name, message: "no such tensor")
        }
        let count = entry.shape.elementCount
        let start = dataStart + entry.range.lowerBound
        return try data.withUnsafeBytes { raw -> HostTensor in
            let bytes = UnsafeRawBufferPointer(rebasing: raw[start..<(dataStart + entry.range.upperBound)])
            func values<T>(_ type: T.Type) -> [T] { (0..<count).map { bytes.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self) } }
            switch entry.dtype {
            case "F32": return HostTensor(shape: entry.shape, scalars: values(Float.self))
            case "F16": return HostTensor(shape: entry.shape, scalars: values(UInt16.self).map { Float(Float16(bitPattern: $0)) }, dtype: .float16)
            case "BF16": return HostTensor(shape: entry.shape, scalars: values(UInt16.self).map(BFloat16.value), dtype: .bfloat16)
            case "F64": return HostTensor(shape: entry.shape, scalars: values(Double.self).map { Float($0) })
            // 8-bit floats are exact in f16, the narrowest type a device stores.
            case "F8_E4M3": return HostTensor(shape: entry.shape, scalars: values(UInt8.self).map(Float8.e4m3fn), dtype: .float16)
            case "F8_E5M2": return HostTensor(shape: entry.shape, scalars: values(UInt8.self).map(Float8.e5m2), dtype: .float16)
            case "I32": return HostTensor(shape: entry.shape, integers: values(Int32.self))
            case "I64":
                let wide = values(Int64.self)
                if let bad = wide.first(where: { Int32(exactly: $0) == nil }) {
                    throw SafeTensorsError(file: url.path, tensor: name, message: "I64 value \(bad) does not fit int32")
                }
                return HostTensor(shape: entry.shape, integers: wide.map { Int32($0) })
            default:
                throw SafeTensorsError(file: url.path, tensor: name, message: "dtype \(entry.dtype) cannot be read as a tensor")
            }
        }
    }

    /// Writes `tensors` (F32, F16, BF16 or I32 per each tensor's dtype) to a temporary file beside
    /// `url` and renames it into place, so a failure never leaves a half-written file.
    public static func write(_ tensors: [String: HostTensor], metadata: [String: String] = [:], to url: URL) throws {
        var header: [String: Any] = metadata.isEmpty ? [:] : ["__metadata__": metadata]
        var body = Data()
        for (name, tensor) in tensors.sorted(by: { $0.key < $1.key }) {
            guard name != "__metadata__" else {
                throw SafeTensorsError(file: url.path, tensor: name, message: "'__metadata__' is reserved for the metadata")
            }
            let stored = tensor.dtype == .int32 ? tensor.integers.count : tensor.scalars.count
            guard stored == tensor.shape.elementCount else {
                throw SafeTensorsError(file: url.path, tensor: name, message: "\(stored) values for shape \(tensor.shape)")
            }
            let start = body.count
            let dtype: String
            switch tensor.dtype {
            case .float32: dtype = "F32"; tensor.scalars.withUnsafeBytes { body.append(contentsOf: $0) }
            case .float16: dtype = "F16"; tensor.scalars.map { Float16($0).bitPattern }.withUnsafeBytes { body.append(contentsOf: $0) }
            case .bfloat16: dtype = "BF16"; tensor.scalars.map(BFloat16.bits).withUnsafeBytes { body.append(contentsOf: $0) }
            case .int32: dtype = "I32"; tensor.integers.withUnsafeBytes { body.append(contentsOf: $0) }
            }
            header[name] = ["dtype": dtype, "shape": tensor.shape.dimensions, "data_offsets": [start, body.count]]
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while (8 + json.count) % 8 != 0 { json.append(0x20) }
        var file = Data((0..<8).map { UInt8(truncatingIfNeeded: UInt64(json.count) >> (8 * UInt64($0))) })
        file.append(json)
        file.append(body)
        try AtomicFile.write(file, to: url)
    }
}

/// A safetensors file that cannot be used, naming the file, the tensor and what was wrong.
public struct SafeTensorsError: Error, CustomStringConvertible, Equatable, Sendable {
    public let file: String
    public let tensor: String?
    public let message: String

    public init(file: String, tensor: String?, message: String) {
        self.file = file
        self.tensor = tensor
        self.message = message
    }

    public var description: String { "\(file)\(tensor.map { ": tensor '\($0)'" } ?? ""): \(message)" }
}
