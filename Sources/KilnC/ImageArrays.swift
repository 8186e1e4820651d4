import CKiln
import Foundation
import Kiln

/// The `kiln_image` arrays `kiln_generate` hands out and `kiln_free_images` takes back: one
/// malloc'd array, and per image one malloc'd block each for the pixels and the PNG bytes.
enum ImageArrays {
    /// `images` as a C array the caller owns.
    static func make(_ images: [GeneratedImage]) throws -> UnsafeMutablePointer<kiln_image> {
        guard let raw = calloc(max(images.count, 1), MemoryLayout<kiln_image>.stride) else {
            throw PipelineError.failed("out of memory for \(images.count) images")
        }
        let array = raw.bindMemory(to: kiln_image.self, capacity: max(images.count, 1))
        for (index, image) in images.enumerated() {
            guard let pixels = copy(image.rgb.pixels), let png = copy(image.png) else {
                free(array, count: index)
                throw PipelineError.failed("out of memory for image \(index) (\(image.rgb.pixels.count + image.png.count) bytes)")
            }
            array[index] = kiln_image(
                width: Int32(image.rgb.width), height: Int32(image.rgb.height), channels: Int32(image.rgb.layout.channels),
                pixels: UnsafePointer(pixels), png: UnsafePointer(png), png_size: image.png.count)
        }
        return array
    }

    /// Frees the first `count` images of `array` and the array itself.
    static func free(_ array: UnsafeMutablePointer<kiln_image>, count: Int) {
        for index in 0..<count {
            Foundation.free(UnsafeMutableRawPointer(mutating: array[index].pixels))
            Foundation.free(UnsafeMutableRawPointer(mutating: array[index].png))
        }
        Foundation.free(array)
    }

    /// `bytes` in a malloc'd block, or nil when memory runs out.
    private static func copy<Bytes: Collection>(_ bytes: Bytes) -> UnsafeMutablePointer<UInt8>? where Bytes.Element == UInt8 {
        guard let block = malloc(max(bytes.count, 1)) else { return nil }
        let buffer = UnsafeMutableBufferPointer(start: block.bindMemory(to: UInt8.self, capacity: bytes.count), count: bytes.count)
        _ = buffer.initialize(from: bytes)
        return buffer.baseAddress
    }
}
