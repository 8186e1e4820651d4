import CKiln
import Foundation
import Kiln

// kiln_last_error, kiln_version, kiln_api_version, kiln_status_name, kiln_devices_json,
// kiln_model_info_json, kiln_free_string: what a caller asks about.

@c @implementation
public func kiln_last_error(_ ctx: OpaquePointer?) -> UnsafePointer<CChar>? {
    (EmbeddedContext.from(ctx)?.messages ?? .withoutContext).current()
}

@c @implementation
public func kiln_version() -> UnsafePointer<CChar>? {
    LibraryStrings.version
}

@c @implementation
public func kiln_api_version() -> Int32 {
    LibraryStrings.apiVersion
}

@c @implementation
public func kiln_status_name(_ status: kiln_status) -> UnsafePointer<CChar>? {
    switch status {
    case KILN_OK: StaticCString.pointer(to: "KILN_OK")
    case KILN_FAILED: StaticCString.pointer(to: "KILN_FAILED")
    case KILN_BAD_INPUT: StaticCString.pointer(to: "KILN_BAD_INPUT")
    case KILN_CANCELLED: StaticCString.pointer(to: "KILN_CANCELLED")
    default: StaticCString.pointer(to: "KILN_UNKNOWN")
    }
}

@c @implementation
public func kiln_devices_json() -> UnsafeMutablePointer<CChar>? {
    var json: UnsafeMutablePointer<CChar>?
    _ = Boundary.call("kiln_devices_json", messages: .withoutContext) {
        json = try CStrings.copy(try DeviceListing.json())
    }
    return json
}

@c @implementation
public func kiln_model_info_json(_ ctx: OpaquePointer?) -> UnsafeMutablePointer<CChar>? {
    var json: UnsafeMutablePointer<CChar>?
    let context = EmbeddedContext.from(ctx)
    _ = Boundary.call("kiln_model_info_json", messages: context?.messages ?? .withoutContext) {
        guard let context else { throw EmbeddingError("ctx is NULL") }
        json = try CStrings.copy(try ModelInformation(context).json())
    }
    return json
}

@c @implementation
public func kiln_free_string(_ string: UnsafeMutablePointer<CChar>?) {
    free(string)
}

/// Strings the library hands out for the whole life of the program.
enum LibraryStrings {
    /// The interface version this library implements (`KILN_API_VERSION` of its header).
    static let apiVersion: Int32 = 1

    /// `KilnVersion.string` as a C string, allocated once and never freed or written again
    /// (hence safe to share between threads).
    nonisolated(unsafe) static let version: UnsafePointer<CChar> = {
        let bytes = Array(KilnVersion.string.utf8CString)
        let copy = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count)
        copy.initialize(from: bytes, count: bytes.count)
        return UnsafePointer(copy)
    }()
}

/// `kiln devices --json`: every Vulkan device with the limits Kiln uses.
enum DeviceListing {
    /// The JSON array `kiln devices --json` prints (without its final newline).
    static func json() throws -> String {
        let devices = try VulkanInstance.shared().physicalDevices().map(\.info)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: try encoder.encode(devices), as: UTF8.self)
    }
}

/// What `kiln_model_info_json` reports about a context: the model, where it runs, and the
/// defaults that zero request fields take.
struct ModelInformation: Encodable {
    struct Defaults: Encodable {
        let width: Int
        let height: Int
        let steps: Int
        let cfgScale: Float
        let sampler: String
        let imageToImageStrength: Float
        let inpaintingStrength: Float
        let maxSequenceLength: Int?
        let takesClassLabels: Bool

        enum CodingKeys: String, CodingKey {
            case width, height, steps, sampler
            case cfgScale = "cfg_scale"
            case imageToImageStrength = "img2img_strength"
            case inpaintingStrength = "inpainting_strength"
            case maxSequenceLength = "max_sequence_length"
            case takesClassLabels = "takes_class_labels"
        }
    }

    let model: String
    let family: String
    let familyName: String
    let backend: String
    let device: String
    let driver: String?
    let dtype: String
    let weightBytes: Int
    let defaults: Defaults
    let kilnVersion: String

    enum CodingKeys: String, CodingKey {
        case model, family, backend, device, driver, dtype, defaults
        case familyName = "family_name"
        case weightBytes = "weight_bytes"
        case kilnVersion = "kiln_version"
    }

    init(_ context: EmbeddedContext) {
        let pipeline = context.pipeline
        let defaults = pipeline.defaults
        model = pipeline.modelURL.path
        family = pipeline.family.rawValue
        familyName = pipeline.family.displayName
        backend = context.device.kind
        device = context.device.deviceName
        driver = context.device.driver
        dtype = pipeline.dtype.shortName
        weightBytes = pipeline.weightBytes
        self.defaults = Defaults(
            width: defaults.width, height: defaults.height, steps: defaults.steps, cfgScale: defaults.guidanceScale,
            sampler: defaults.sampler, imageToImageStrength: defaults.imageToImageStrength, inpaintingStrength: defaults.inpaintingStrength,
            maxSequenceLength: defaults.maxSequenceLength, takesClassLabels: defaults.takesClassLabels)
        kilnVersion = KilnVersion.string
    }

    func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}
