import CKiln
import Foundation
import Kiln

// kiln_request_init, kiln_generate, kiln_cancel, kiln_free_images: making images.

@c @implementation
public func kiln_request_init(_ request: UnsafeMutablePointer<kiln_request>?) {
    VersionedStruct.initialise(request, size: MemoryLayout<kiln_request>.size)
}

@c @implementation
public func kiln_request_init_sized(_ request: UnsafeMutablePointer<kiln_request>?, _ struct_size: Int) {
    VersionedStruct.initialise(request, size: struct_size)
}

@c @implementation
public func kiln_generate(
    _ ctx: OpaquePointer?, _ request: UnsafePointer<kiln_request>?, _ progress: kiln_progress_fn?, _ user_data: UnsafeMutableRawPointer?,
    _ images: UnsafeMutablePointer<UnsafeMutablePointer<kiln_image>?>?, _ count: UnsafeMutablePointer<Int>?
) -> kiln_status {
    images?.pointee = nil
    count?.pointee = 0
    guard let context = EmbeddedContext.from(ctx) else {
        return Boundary.call("kiln_generate", messages: .withoutContext) { throw EmbeddingError("ctx is NULL") }
    }
    return Boundary.call("kiln_generate", messages: context.messages) {
        guard let request else { throw EmbeddingError("request is NULL") }
        guard let images, let count else { throw EmbeddingError("\(images == nil ? "images" : "count") is NULL") }
        let settings = try RequestTranslation.read(request)
        let made = try context.generate(settings) { report in
            guard let progress, report.stage == .denoising else { return }
            progress(user_data, Int32(clamping: report.step), Int32(clamping: report.stepCount), report.lastSeconds)
        }
        images.pointee = try ImageArrays.make(made)
        count.pointee = made.count
    }
}

@c @implementation
public func kiln_cancel(_ ctx: OpaquePointer?) {
    EmbeddedContext.from(ctx)?.cancel()
}

@c @implementation
public func kiln_free_images(_ images: UnsafeMutablePointer<kiln_image>?, _ count: Int) {
    guard let images else { return }
    ImageArrays.free(images, count: count)
}
