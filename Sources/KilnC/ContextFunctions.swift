import CKiln
import Foundation
import Kiln

// kiln_open_options_init, kiln_open, kiln_close: a context's life.

@c @implementation
public func kiln_open_options_init(_ options: UnsafeMutablePointer<kiln_open_options>?) {
    VersionedStruct.initialise(options, size: MemoryLayout<kiln_open_options>.size)
}

@c @implementation
public func kiln_open_options_init_sized(_ options: UnsafeMutablePointer<kiln_open_options>?, _ struct_size: Int) {
    VersionedStruct.initialise(options, size: struct_size)
}

@c @implementation
public func kiln_open(
    _ model_path: UnsafePointer<CChar>?, _ options: UnsafePointer<kiln_open_options>?, _ out: UnsafeMutablePointer<OpaquePointer?>?
) -> kiln_status {
    out?.pointee = nil
    return Boundary.call("kiln_open", messages: .withoutContext) {
        guard let out else { throw EmbeddingError("out is NULL") }
        let settings = try options.map(OpenSettings.read) ?? kiln_open_options()
        let context = try OpenSettings.open(path: try CStrings.optional(model_path, field: "model_path"), settings)
        out.pointee = context.handle
    }
}

@c @implementation
public func kiln_close(_ ctx: OpaquePointer?) {
    guard let ctx, let context = EmbeddedContext.from(ctx) else { return }
    context.cancel()
    context.waitUntilIdle()
    EmbeddedContext.release(ctx)
}

/// `kiln_open_options` read and applied as `kiln generate`'s `--backend`, `--device`, `--dtype`,
/// `--config`, `--vae` and `--inpainting-unet` are.
enum OpenSettings {
    /// The size `kiln_open_options` had in earlier headers: the fields up to `config` alone.
    static let olderSizes = [MemoryLayout<kiln_open_options>.offset(of: \kiln_open_options.vae) ?? 0]

    static func read(_ pointer: UnsafePointer<kiln_open_options>) throws -> kiln_open_options {
        try VersionedStruct.read(pointer, name: "kiln_open_options", olderSizes: olderSizes, zero: kiln_open_options())
    }

    /// Opens the model at `path` (nil: the default model) as `settings` ask.
    static func open(path: String?, _ settings: kiln_open_options) throws -> EmbeddedContext {
        let backend = try CStrings.optional(settings.backend, field: "backend") ?? "vulkan"
        let dtypeName = try CStrings.optional(settings.dtype, field: "dtype") ?? "f16"
        guard let dtype = DType.allCases.first(where: { $0.shortName == dtypeName }), dtype == .float16 || dtype == .float32 else {
            throw EmbeddingError("dtype must be f16 or f32, got '\(dtypeName)'")
        }
        let url = try path.map { URL(fileURLWithPath: $0) } ?? DefaultModel.requiredLocation()
        let file = { (pointer: UnsafePointer<CChar>?, field: String) in try CStrings.optional(pointer, field: field).map(URL.init(fileURLWithPath:)) }
        let config = try file(settings.config, "config")
        let vae = try file(settings.vae, "vae")
        let inpaintingUNet = try file(settings.inpainting_unet, "inpainting_unet")
        let device = try BackendChoice.open(backend, device: try CStrings.optional(settings.device, field: "device"))
        return try EmbeddedContext(device: device) { device in
            try Pipelines.open(url, config: config, vae: vae, inpaintingUNet: inpaintingUNet, backend: device.backend, dtype: device.storage(dtype))
        }
    }
}
