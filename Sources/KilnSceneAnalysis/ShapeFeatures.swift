/// Scale-free geometry of a foreground mask, enough to tell the grammar's five shapes apart.
public struct ShapeFeatures: Sendable, Equatable, CustomStringConvertible {
    /// Area over the bounding box's area: square 1, circle pi/4, cross 5/9, triangle 1/2, star 0.43.
    public var fill: Double
    /// Area over the convex hull's area (solidity): 1 for the convex shapes, cross 5/7, star 0.62.
    public var solidity: Double
    /// Corners of the convex hull once vertices that stray less than `cornerTolerance` of its
    /// equivalent radius from the line of their neighbours are dropped: triangle 3, square 4,
    /// star 5 (its hull is a pentagon), cross 8 (an octagon); a circle has no real corners and a
    /// pixel circle's hull keeps 8 or more (counts above 8 compare as 8).
    public var corners: Int
    /// Overlap (intersection over union) of the mask and its up-down mirror in the bounding box:
    /// 1 for circle, square and cross, a half for the star, a third for the triangle.
    public var verticalSymmetry: Double
    /// Standard deviation over mean of the boundary's distances from the centroid: circle 0,
    /// square 0.11, star 0.20, cross and triangle 0.23.
    public var radialSpread: Double
    /// How far the centroid lies below the bounding box's middle, in box heights: triangle 1/6,
    /// star 0.05, the others 0.
    public var centroidOffset: Double

    /// Of the convex hull's equivalent radius (sqrt(area / pi)); see `corners`.
    public static let cornerTolerance = 0.12

    public init(fill: Double, solidity: Double, corners: Int, verticalSymmetry: Double, radialSpread: Double, centroidOffset: Double) {
        self.fill = fill
        self.solidity = solidity
        self.corners = corners
        self.verticalSymmetry = verticalSymmetry
        self.radialSpread = radialSpread
        self.centroidOffset = centroidOffset
    }

    init(_ mask: BinaryMask) {
        let area = Double(mask.area)
        let box = mask.boundingBox
        let boxWidth = box.maxX - box.minX, boxHeight = box.maxY - box.minY
        fill = area / Double(boxWidth * boxHeight)

        let hull = mask.convexHull
        let hullArea = polygonArea(hull)
        solidity = hullArea > 0 ? min(1, area / hullArea) : 0
        let radius = (hullArea / Double.pi).squareRoot()
        corners = simplifiedPolygon(hull, tolerance: Self.cornerTolerance * radius).count

        var both = 0, either = 0
        for y in box.minY..<box.maxY {
            let mirrored = box.minY + box.maxY - 1 - y
            for x in box.minX..<box.maxX {
                let a = mask[x, y], b = mask[x, mirrored]
                if a && b { both += 1 }
                if a || b { either += 1 }
            }
        }
        verticalSymmetry = either > 0 ? Double(both) / Double(either) : 0

        let centroid = mask.centroid
        let distances = mask.boundaryPixels.map { p -> Double in
            let dx = Double(p.x) + 0.5 - centroid.x, dy = Double(p.y) + 0.5 - centroid.y
            return (dx * dx + dy * dy).squareRoot()
        }
        let mean = distances.reduce(0, +) / Double(max(1, distances.count))
        let variance = distances.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(max(1, distances.count))
        radialSpread = mean > 0 ? variance.squareRoot() / mean : 0
        centroidOffset = (centroid.y - Double(box.minY + box.maxY) / 2) / Double(boxHeight)
    }

    /// The features of the grammar's ideal shapes (analytic values; the star's measured on a
    /// 512-pixel render of scenes.py's star, inner radius half the outer).
    public static func ideal(_ shape: SceneShape) -> ShapeFeatures {
        switch shape {
        case .circle: ShapeFeatures(fill: Double.pi / 4, solidity: 1, corners: 8, verticalSymmetry: 1, radialSpread: 0, centroidOffset: 0)
        case .square: ShapeFeatures(fill: 1, solidity: 1, corners: 4, verticalSymmetry: 1, radialSpread: 0.11, centroidOffset: 0)
        case .triangle: ShapeFeatures(fill: 0.5, solidity: 1, corners: 3, verticalSymmetry: 1.0 / 3.0, radialSpread: 0.23, centroidOffset: 1.0 / 6.0)
        case .star: ShapeFeatures(fill: 0.43, solidity: 0.62, corners: 5, verticalSymmetry: 0.5, radialSpread: 0.20, centroidOffset: 0.05)
        case .cross: ShapeFeatures(fill: 5.0 / 9.0, solidity: 5.0 / 7.0, corners: 8, verticalSymmetry: 1, radialSpread: 0.23, centroidOffset: 0)
        }
    }

    /// The shape's area over its bounding square's (side squared): the star's box is its height
    /// square and it is 5% wider than tall.
    public static func areaRatio(_ shape: SceneShape) -> Double {
        switch shape {
        case .circle: Double.pi / 4
        case .square: 1
        case .triangle: 0.5
        case .star: 0.449
        case .cross: 5.0 / 9.0
        }
    }

    /// How far each feature may stray from an ideal shape's before it counts one unit of distance.
    /// Softened edges (a model's, or a blur) raise a small star's fill and solidity towards a
    /// cross's or a circle's but hardly change its up-down symmetry, so symmetry is held tightest
    /// (chosen on Gaussian-blurred ground-truth renders, sigma 1.5 and 2 pixels at 64x64).
    static let scales = (fill: 0.08, solidity: 0.06, corners: 1.5, verticalSymmetry: 0.09, radialSpread: 0.035, centroidOffset: 0.04)

    /// Squared, scaled distance from `other`'s values; corner counts above 8 count as 8.
    public func distance(to other: ShapeFeatures) -> Double {
        func term(_ a: Double, _ b: Double, _ scale: Double) -> Double { (a - b) * (a - b) / (scale * scale) }
        let s = Self.scales
        return term(fill, other.fill, s.fill) + term(solidity, other.solidity, s.solidity)
            + term(Double(min(corners, 8)), Double(min(other.corners, 8)), s.corners)
            + term(verticalSymmetry, other.verticalSymmetry, s.verticalSymmetry)
            + term(radialSpread, other.radialSpread, s.radialSpread)
            + term(centroidOffset, other.centroidOffset, s.centroidOffset)
    }

    /// The grammar shape whose ideal features are nearest.
    public func nearestShape() -> SceneShape {
        SceneShape.allCases.min { distance(to: Self.ideal($0)) < distance(to: Self.ideal($1)) }!
    }

    public var description: String {
        func f(_ v: Double) -> String { String(Double((v * 1000).rounded()) / 1000) }
        return "fill \(f(fill)) solidity \(f(solidity)) corners \(corners) vsym \(f(verticalSymmetry)) spread \(f(radialSpread)) offset \(f(centroidOffset))"
    }
}
