extension PNGImage {
    /// The image as `.rgb` (`[H, W, 3]`): gray is repeated into all three channels and alpha is
    /// dropped without compositing, as Pillow's `convert("RGB")` does.
    public func rgb() -> PNGImage {
        if layout == .rgb { return self }
        let channels = layout.channels
        var output = [UInt8](repeating: 0, count: width * height * 3)
        pixels.withUnsafeBufferPointer { source in
            output.withUnsafeMutableBufferPointer { target in
                for index in 0..<(width * height) {
                    let base = index * channels
                    if layout == .grayscale || layout == .grayscaleAlpha {
                        let gray = source[base]
                        target[index * 3] = gray
                        target[index * 3 + 1] = gray
                        target[index * 3 + 2] = gray
                    } else {
                        target[index * 3] = source[base]
                        target[index * 3 + 1] = source[base + 1]
                        target[index * 3 + 2] = source[base + 2]
                    }
                }
            }
        }
        return PNGImage(checkedWidth: width, height: height, layout: .rgb, pixels: output, text: text)
    }

    /// The image as `.grayscale` (`[H, W, 1]`), equal to Pillow's `convert("L")` of the RGB image:
    /// L = (19595 R + 38470 G + 7471 B + 32768) >> 16, the ITU-R 601-2 weights in 16.16 fixed point.
    /// Gray input keeps its values; alpha is dropped.
    public func grayscale() -> PNGImage {
        if layout == .grayscale { return self }
        let channels = layout.channels
        var output = [UInt8](repeating: 0, count: width * height)
        pixels.withUnsafeBufferPointer { source in
            output.withUnsafeMutableBufferPointer { target in
                for index in 0..<(width * height) {
                    let base = index * channels
                    if layout == .grayscaleAlpha {
                        target[index] = source[base]
                    } else {
                        target[index] = Self.luma(red: source[base], green: source[base + 1], blue: source[base + 2])
                    }
                }
            }
        }
        return PNGImage(checkedWidth: width, height: height, layout: .grayscale, pixels: output, text: text)
    }

    /// Pillow's integer RGB -> L formula; exact for all 2^24 colours (the fixture generator checks it).
    @inline(__always)
    public static func luma(red: UInt8, green: UInt8, blue: UInt8) -> UInt8 {
        let weighted = 19595 * UInt32(red) + 38470 * UInt32(green) + 7471 * UInt32(blue) + 0x8000
        return UInt8(truncatingIfNeeded: weighted >> 16)
    }
}
