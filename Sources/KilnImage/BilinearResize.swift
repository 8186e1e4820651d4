/// Pillow's `Image.resize((width, height), Image.BILINEAR)` on 8-bit images, bit for bit: the
/// separable, antialiasing resampling of Pillow's `libImaging/Resample.c` (a triangle filter
/// stretched by the reduction factor, so a reduction averages every source pixel it covers),
/// with its 22-bit fixed-point weights and its 8-bit rounding between the horizontal and the
/// vertical pass. torchvision's `Resize` calls exactly this on PIL images, whatever its
/// `antialias` argument says.
///
/// Shapes: `[H, W, C]` -> `[height, width, C]`, any channel layout, every channel alike.
extension PNGImage {
    public func resizedBilinear(width newWidth: Int, height newHeight: Int) throws -> PNGImage {
        guard newWidth > 0, newHeight > 0 else {
            throw PNGError.invalidImage(detail: "resize to \(newWidth) x \(newHeight): both sides must be positive")
        }
        if newWidth == width && newHeight == height { return self }
        let channels = layout.channels
        let vertical = ResamplingWeights(inputSize: height, outputSize: newHeight)
        let horizontal = ResamplingWeights(inputSize: width, outputSize: newWidth)
        var rows = pixels
        // Pillow 13 runs the vertical pass first when the height shrinks by more than
        // twice as many pixels as the width, else the horizontal pass first; the 8-bit rounding
        // between the passes makes the order visible.
        if height - newHeight > 0 && height - newHeight > (width - newWidth) * 2 {
            rows = vertical.apply(to: rows, lines: 0..<width, lineLength: width, channels: channels, alongRows: false)
            if newWidth != width {
                rows = horizontal.apply(to: rows, lines: 0..<newHeight, lineLength: width, channels: channels, alongRows: true)
            }
        } else {
            var rowOffset = 0
            if newWidth != width {
                // Only the source rows the vertical pass reads are resampled horizontally.
                let first = vertical.starts[0]
                let last = vertical.starts[newHeight - 1] + vertical.weights[newHeight - 1].count
                rows = horizontal.apply(to: rows, lines: first..<last, lineLength: width, channels: channels, alongRows: true)
                rowOffset = first
            }
            if newHeight != height {
                rows = vertical.apply(to: rows, lines: 0..<newWidth, lineLength: newWidth, channels: channels, alongRows: false,
                                      sourceOffset: rowOffset)
            }
        }
        return PNGImage(checkedWidth: newWidth, height: newHeight, layout: layout, pixels: rows, text: text)
    }

    /// The `width` x `height` region whose top-left pixel is (`left`, `top`), as Pillow's
    /// `crop((left, top, left + width, top + height))` inside the image.
    public func cropped(left: Int, top: Int, width cropWidth: Int, height cropHeight: Int) throws -> PNGImage {
        guard left >= 0, top >= 0, cropWidth > 0, cropHeight > 0, left + cropWidth <= width, top + cropHeight <= height else {
            throw PNGError.invalidImage(
                detail: "crop \(cropWidth) x \(cropHeight) at (\(left), \(top)) does not lie inside the \(width) x \(height) image")
        }
        if left == 0 && top == 0 && cropWidth == width && cropHeight == height { return self }
        let channels = layout.channels
        var output = [UInt8]()
        output.reserveCapacity(cropWidth * cropHeight * channels)
        for row in top..<(top + cropHeight) {
            let start = (row * width + left) * channels
            output += pixels[start..<(start + cropWidth * channels)]
        }
        return PNGImage(checkedWidth: cropWidth, height: cropHeight, layout: layout, pixels: output, text: text)
    }
}

/// The weights of one resampling pass (Pillow's `precompute_coeffs` followed by
/// `normalize_coeffs_8bpc`): for every output position, the first source position it reads and
/// one fixed-point weight per source position from there.
struct ResamplingWeights {
    /// Pillow's `PRECISION_BITS`: 32 bits less 8 for the value and 2 for overshoot.
    static let precisionBits = 22

    /// The first source position of each output position.
    let starts: [Int]
    /// Weights scaled by 2^22 and rounded half away from zero, as Pillow's int cast rounds them.
    let weights: [[Int]]

    /// The triangle filter (support 1) widened by the reduction factor `inputSize / outputSize`
    /// where that exceeds 1; weights normalised to sum to one before rounding, in float64.
    init(inputSize: Int, outputSize: Int) {
        // Pillow takes the box's extent as a float before dividing in double.
        let scale = Double(Float(inputSize)) / Double(outputSize)
        let filterScale = max(scale, 1)
        let support = filterScale
        let inverseFilterScale = 1 / filterScale
        var starts = [Int](), weights = [[Int]]()
        starts.reserveCapacity(outputSize)
        weights.reserveCapacity(outputSize)
        for position in 0..<outputSize {
            let center = (Double(position) + 0.5) * scale
            // C's (int) casts truncate toward zero.
            let first = max(Int(center - support + 0.5), 0)
            let end = min(Int(center + support + 0.5), inputSize)
            var values = (first..<max(end, first)).map { source -> Double in
                let distance = abs((Double(source) - center + 0.5) * inverseFilterScale)
                return distance < 1 ? 1 - distance : 0
            }
            let total = values.reduce(0, +)
            if total != 0 { values = values.map { $0 / total } }
            let unit = Double(1 << Self.precisionBits)
            starts.append(first)
            weights.append(values.map { $0 < 0 ? Int(-0.5 + $0 * unit) : Int(0.5 + $0 * unit) })
        }
        self.starts = starts
        self.weights = weights
    }

    /// One pass over `lines` of an interleaved `[rows, columns, channels]` image: along rows
    /// (horizontal: each line is a source row, `lineLength` source columns wide, resampled to
    /// `starts.count` columns) or along columns (vertical: each line is a column of a
    /// `lineLength`-wide image whose row `sourceOffset` is the first stored). Each output is
    /// `(2^21 + sum(weight * sample)) >> 22`, clamped to 0...255.
    func apply(
        to source: [UInt8], lines: Range<Int>, lineLength: Int, channels: Int, alongRows: Bool, sourceOffset: Int = 0
    ) -> [UInt8] {
        let outputCount = starts.count
        let half = 1 << (Self.precisionBits - 1)
        var output = [UInt8](repeating: 0, count: lines.count * outputCount * channels)
        source.withUnsafeBufferPointer { input in
            output.withUnsafeMutableBufferPointer { target in
                for (lineIndex, line) in lines.enumerated() {
                    for position in 0..<outputCount {
                        let first = starts[position], lineWeights = weights[position]
                        for channel in 0..<channels {
                            var sum = half
                            for (offset, weight) in lineWeights.enumerated() {
                                let index = alongRows
                                    ? (line * lineLength + first + offset) * channels + channel
                                    : ((first + offset - sourceOffset) * lineLength + line) * channels + channel
                                sum += Int(input[index]) * weight
                            }
                            let value = UInt8(clamping: sum >> Self.precisionBits)
                            let targetIndex = alongRows
                                ? (lineIndex * outputCount + position) * channels + channel
                                : (position * lineLength + line) * channels + channel
                            target[targetIndex] = value
                        }
                    }
                }
            }
        }
        return output
    }
}
