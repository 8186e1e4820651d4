import Foundation
import Kiln

/// One labelled PNG of a one- or two-axis expansion's images, as A1111's X/Y plot lays them out:
/// the line's last expanded field across (columns), its first down (rows), each cell the job's
/// first image, labels in `BitmapFont` on white bands above and to the left.
public struct ComparisonGrid: Sendable {
    /// The fields across and down (down is nil for one axis).
    public let columnField: String
    public let rowField: String?
    /// `rows x columns` jobs.
    public let cells: [[RenderJob]]

    /// The grid of the manifest's first line that expands; a bad-input error when no line does,
    /// or the line expands on more than two fields.
    public init(manifest: RenderManifest) throws {
        guard let first = manifest.jobs.first(where: { !$0.axes.isEmpty }) else {
            throw RenderError.badInput("--grid: no manifest line expands a list or range to lay out")
        }
        let jobs = manifest.jobs.filter { $0.line == first.line }
        let fields = first.axes.map(\.field)
        guard fields.count <= 2 else {
            throw RenderError.badInput("--grid: line \(first.line) expands \(fields.count) fields (\(fields.joined(separator: ", "))); a grid takes one or two")
        }
        columnField = fields[fields.count - 1]
        rowField = fields.count == 2 ? fields[0] : nil
        let columns = Set(jobs.map { $0.axes[fields.count - 1].value }).count
        cells = stride(from: 0, to: jobs.count, by: columns).map { Array(jobs[$0..<min($0 + columns, jobs.count)]) }
    }

    /// The grid drawn from the jobs' images in `folder`.
    public func image(folder: URL) throws -> PNGImage {
        let images = try cells.map { row in
            try row.map { job -> PNGImage in
                guard let name = job.outputNames.first else { throw RenderError.output("job \(job.id) has no output") }
                return try PNGImage(contentsOf: folder.appendingPathComponent(name)).rgb()
            }
        }
        guard let sample = images.first?.first else { throw RenderError.badInput("--grid: no images") }
        let (cellWidth, cellHeight) = (sample.width, sample.height)
        guard images.allSatisfy({ $0.allSatisfy { $0.width == cellWidth && $0.height == cellHeight } }) else {
            throw RenderError.badInput("--grid: the images differ in size")
        }
        let scale = cellWidth >= 128 ? 2 : 1
        let padding = 2 * scale
        let labelHeight = BitmapFont.height * scale + 2 * padding
        let rowLabels = rowField.map { field in cells.map { "\(field)=\($0[0].axes[0].value)" } } ?? []
        let labelWidth = rowLabels.map { BitmapFont.width(of: $0) * scale + 2 * padding }.max() ?? 0
        let columns = cells.map(\.count).max() ?? 0
        var canvas = Canvas(width: labelWidth + columns * cellWidth, height: labelHeight + cells.count * cellHeight)
        for (column, job) in cells[0].enumerated() {
            let value = job.axes[job.axes.count - 1].value
            canvas.write(Self.fitted(["\(columnField)=\(value)", value], width: cellWidth - 2 * padding, scale: scale),
                         x: labelWidth + column * cellWidth + padding, y: padding, scale: scale)
        }
        for (row, text) in rowLabels.enumerated() {
            canvas.write(text, x: padding, y: labelHeight + row * cellHeight + (cellHeight - BitmapFont.height * scale) / 2, scale: scale)
        }
        for (row, line) in images.enumerated() {
            for (column, image) in line.enumerated() {
                canvas.paste(image, x: labelWidth + column * cellWidth, y: labelHeight + row * cellHeight)
            }
        }
        return try PNGImage(width: canvas.width, height: canvas.height, layout: .rgb, pixels: canvas.pixels)
    }

    /// The first of `candidates` (longest first) that fits `width` pixels, else the last cut
    /// short with a trailing `.`.
    static func fitted(_ candidates: [String], width: Int, scale: Int) -> String {
        let fits = max((width + BitmapFont.spacing * scale) / ((BitmapFont.width + BitmapFont.spacing) * scale), 1)
        if let whole = candidates.first(where: { $0.count <= fits }) { return whole }
        let text = candidates.last ?? ""
        return String(text.prefix(max(fits - 1, 0))) + "."
    }
}

/// A white RGB canvas.
private struct Canvas {
    let width: Int
    let height: Int
    var pixels: [UInt8]

    init(width: Int, height: Int) {
        self.width = width
        self.height = height
        pixels = [UInt8](repeating: 255, count: width * height * 3)
    }

    mutating func paste(_ image: PNGImage, x: Int, y: Int) {
        for row in 0..<image.height {
            let source = row * image.width * 3, target = ((y + row) * width + x) * 3
            pixels.replaceSubrange(target..<(target + image.width * 3), with: image.pixels[source..<(source + image.width * 3)])
        }
    }

    mutating func write(_ text: String, x: Int, y: Int, scale: Int) {
        for (index, character) in text.enumerated() {
            let left = x + index * (BitmapFont.width + BitmapFont.spacing) * scale
            for (row, line) in BitmapFont.glyph(character).enumerated() {
                for (column, ink) in line.enumerated() where ink {
                    for dy in 0..<scale {
                        for dx in 0..<scale {
                            let (px, py) = (left + column * scale + dx, y + row * scale + dy)
                            guard px < width, py < height else { continue }
                            let offset = (py * width + px) * 3
                            pixels.replaceSubrange(offset..<(offset + 3), with: [0, 0, 0])
                        }
                    }
                }
            }
        }
    }
}
