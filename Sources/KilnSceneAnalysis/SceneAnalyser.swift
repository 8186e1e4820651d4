import Foundation

/// What `SceneAnalyser` reads from a picture. Names are the grammar's words; nil where the
/// picture has no foreground to judge.
public struct SceneAnalysis: Sendable, Equatable, CustomStringConvertible {
    /// The nearest grammar colour to the border's dominant colour.
    public var background: String
    /// The nearest grammar colour (other than the background's) to the foreground's dominant colour.
    public var colour: String?
    public var shape: SceneShape?
    public var position: String?
    public var size: String?
    /// Foreground pixels (the largest connected region, holes filled) over all pixels.
    public var foregroundFraction: Double
    /// Centre of mass of the foreground, in fractions of the image side (x right, y down).
    public var centroidX: Double?, centroidY: Double?
    /// The estimated centre of the shape's bounding square (the point the grammar positions):
    /// the centroid moved by the classified shape's own centroid offset (a triangle's centroid
    /// lies a sixth of its side below that centre).
    public var centreX: Double?, centreY: Double?
    /// The side of the shape's bounding square estimated from the foreground's area and the
    /// classified shape's area ratio, in fractions of the image side.
    public var estimatedSide: Double?
    public var features: ShapeFeatures?
    /// The measured (not named) colours, sRGB 0-255.
    public var measuredBackground: [Double]
    public var measuredForeground: [Double]?

    /// The analysis as a scene, when every field was read.
    public var scene: SceneDescription? {
        guard let colour, let shape, let position, let size else { return nil }
        return SceneDescription(size: size, colour: colour, shape: shape, background: background, position: position)
    }

    /// Which fields agree with `expected`.
    public func agreement(with expected: SceneDescription) -> SceneAgreement {
        SceneAgreement(colour: colour == expected.colour, background: background == expected.background,
                       shape: shape == expected.shape, position: position == expected.position, size: size == expected.size)
    }

    public var description: String {
        let words = [size ?? "?", colour ?? "?", shape?.rawValue ?? "?"].joined(separator: " ")
        var text = "\(words) on \(background), \(position ?? "?")"
        if let features { text += " [\(features)]" }
        return text
    }
}

public struct SceneAgreement: Sendable, Equatable {
    public var colour: Bool, background: Bool, shape: Bool, position: Bool, size: Bool

    public var all: Bool { colour && background && shape && position && size }
}

/// Judges a picture of the scene grammar from its pixels alone, with plain geometry (no learnt
/// model):
/// 1. background: the border ring's pixels vote for their nearest grammar colour; the winner's
///    pixels give the measured background colour;
/// 2. foreground: pixels far from the measured background; the purest of them (farthest from it)
///    vote for their nearest grammar colour other than the background's;
/// 3. mask: every pixel more than half-way from the measured background to the measured foreground
///    colour (projected on the line between them), keeping the largest 4-connected region and
///    filling its holes;
/// 4. shape: `ShapeFeatures` (fill of the bounding box, convex-hull solidity, corner count of the
///    simplified hull, up-down mirror overlap, spread of the boundary's distance from the centroid,
///    the centroid's offset from the box's middle) against the grammar shapes' ideal values;
/// 5. position: the bounding square's centre (from the centroid and the shape) nearest to a
///    grammar position; size: the bounding square's side (from the area and the shape) nearest
///    to a grammar size.
public struct SceneAnalyser: Sendable {
    public let grammar: SceneGrammar
    /// A pixel belongs to the foreground's candidates when its RGB distance from the measured
    /// background exceeds this (the closest two grammar colours, red and orange, are 93 apart).
    public var candidateDistance: Double = 40

    public init(grammar: SceneGrammar = .kilnShapes) {
        self.grammar = grammar
    }

    /// `pixels`: `height * width * 3` samples, row-major, interleaved RGB.
    public func analyse(rgb pixels: [UInt8], width: Int, height: Int) -> SceneAnalysis {
        precondition(width > 0 && height > 0 && pixels.count == width * height * 3, "expected \(width)x\(height) RGB8 pixels")
        let count = width * height
        let values = pixels.map(Double.init)
        func pixel(_ index: Int) -> (Double, Double, Double) { (values[index * 3], values[index * 3 + 1], values[index * 3 + 2]) }

        // 1. Background from the border ring (about 1/32 of the side wide).
        let ring = max(1, min(width, height) / 32)
        var border: [Int] = []
        for y in 0..<height {
            for x in 0..<width where x < ring || x >= width - ring || y < ring || y >= height - ring {
                border.append(y * width + x)
            }
        }
        let (backgroundIndex, backgroundPixels) = dominantColour(of: border, pixel: pixel, excluding: nil)
        let background = medianColour(of: backgroundPixels, pixel: pixel)
        var analysis = SceneAnalysis(background: grammar.colours[backgroundIndex].name, foregroundFraction: 0,
                                     measuredBackground: [background.0, background.1, background.2])

        // 2. Foreground colour from the purest far-from-background pixels.
        var distance = [Double](repeating: 0, count: count)
        var candidates: [Int] = []
        for index in 0..<count {
            let p = pixel(index)
            let d = ((p.0 - background.0) * (p.0 - background.0) + (p.1 - background.1) * (p.1 - background.1)
                + (p.2 - background.2) * (p.2 - background.2)).squareRoot()
            distance[index] = d
            if d > candidateDistance { candidates.append(index) }
        }
        guard candidates.count >= 4 else { return analysis }
        let sortedDistances = candidates.map { distance[$0] }.sorted()
        let high = sortedDistances[min(sortedDistances.count - 1, Int(Double(sortedDistances.count) * 0.9))]
        let core = candidates.filter { distance[$0] >= 0.75 * high }
        let (foregroundIndex, foregroundPixels) = dominantColour(of: core, pixel: pixel, excluding: backgroundIndex)
        let foreground = medianColour(of: foregroundPixels, pixel: pixel)
        analysis.colour = grammar.colours[foregroundIndex].name
        analysis.measuredForeground = [foreground.0, foreground.1, foreground.2]

        // 3. Mask: more than half-way from background to foreground along the line between them.
        let direction = (foreground.0 - background.0, foreground.1 - background.1, foreground.2 - background.2)
        let length = direction.0 * direction.0 + direction.1 * direction.1 + direction.2 * direction.2
        guard length > 0 else { return analysis }
        var raw = [Bool](repeating: false, count: count)
        for index in 0..<count {
            let p = pixel(index)
            let alpha = ((p.0 - background.0) * direction.0 + (p.1 - background.1) * direction.1
                + (p.2 - background.2) * direction.2) / length
            raw[index] = alpha > 0.5
        }
        let mask = BinaryMask(width: width, height: height, bits: raw).largestComponent().holesFilled()
        guard mask.area >= 3 else { return analysis }
        analysis.foregroundFraction = Double(mask.area) / Double(count)
        let centroid = mask.centroid
        analysis.centroidX = centroid.x / Double(width)
        analysis.centroidY = centroid.y / Double(height)

        // 4. Shape.
        let features = ShapeFeatures(mask)
        analysis.features = features
        let shape = features.nearestShape()
        analysis.shape = shape

        // 5. Position and size from the shape's bounding square.
        let box = mask.boundingBox
        let boxHeight = Double(box.maxY - box.minY)
        let centreX = centroid.x / Double(width)
        let centreY = (centroid.y - ShapeFeatures.ideal(shape).centroidOffset * boxHeight) / Double(height)
        analysis.centreX = centreX
        analysis.centreY = centreY
        analysis.position = grammar.positions.min { a, b in
            (a.x - centreX) * (a.x - centreX) + (a.y - centreY) * (a.y - centreY)
                < (b.x - centreX) * (b.x - centreX) + (b.y - centreY) * (b.y - centreY)
        }?.name
        let side = (Double(mask.area) / ShapeFeatures.areaRatio(shape)).squareRoot() / Double(min(width, height))
        analysis.estimatedSide = side
        analysis.size = grammar.sizes.min { abs($0.side - side) < abs($1.side - side) }?.name
        return analysis
    }

    /// The grammar colour most of `indices` are nearest to, and those pixels.
    private func dominantColour(of indices: [Int], pixel: (Int) -> (Double, Double, Double), excluding: Int?) -> (Int, [Int]) {
        var members = [[Int]](repeating: [], count: grammar.colours.count)
        for index in indices {
            let p = pixel(index)
            var best = -1, bestDistance = Double.infinity
            for (k, colour) in grammar.colours.enumerated() where k != excluding {
                let d = (p.0 - colour.red) * (p.0 - colour.red) + (p.1 - colour.green) * (p.1 - colour.green)
                    + (p.2 - colour.blue) * (p.2 - colour.blue)
                if d < bestDistance { best = k; bestDistance = d }
            }
            if best >= 0 { members[best].append(index) }
        }
        let winner = members.indices.max { members[$0].count < members[$1].count || (members[$0].count == members[$1].count && $0 > $1) }!
        return (winner, members[winner])
    }

    /// Per-channel median of the pixels (the named colour itself when there are none).
    private func medianColour(of indices: [Int], pixel: (Int) -> (Double, Double, Double)) -> (Double, Double, Double) {
        guard !indices.isEmpty else { return (0, 0, 0) }
        func median(_ channel: Int) -> Double {
            let sorted = indices.map { index -> Double in
                let p = pixel(index)
                return channel == 0 ? p.0 : channel == 1 ? p.1 : p.2
            }.sorted()
            return sorted[sorted.count / 2]
        }
        return (median(0), median(1), median(2))
    }
}
