/// A foreground mask: `bits[y * width + x]`.
struct BinaryMask: Sendable {
    let width: Int
    let height: Int
    var bits: [Bool]

    subscript(x: Int, y: Int) -> Bool { bits[y * width + x] }

    var area: Int { bits.reduce(0) { $0 + ($1 ? 1 : 0) } }

    /// Regions of equal value, 4-connected: a label per pixel and each label's pixel count.
    private func components(of value: Bool) -> (labels: [Int], sizes: [Int]) {
        var labels = [Int](repeating: -1, count: bits.count)
        var sizes: [Int] = []
        var stack: [Int] = []
        for start in bits.indices where bits[start] == value && labels[start] < 0 {
            let label = sizes.count
            labels[start] = label
            stack.append(start)
            var size = 0
            while let index = stack.popLast() {
                size += 1
                let x = index % width, y = index / width
                for (nx, ny) in [(x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1)]
                where nx >= 0 && nx < width && ny >= 0 && ny < height {
                    let neighbour = ny * width + nx
                    if bits[neighbour] == value && labels[neighbour] < 0 {
                        labels[neighbour] = label
                        stack.append(neighbour)
                    }
                }
            }
            sizes.append(size)
        }
        return (labels, sizes)
    }

    /// Only the largest 4-connected region of set pixels (the first found on a tie).
    func largestComponent() -> BinaryMask {
        let (labels, sizes) = components(of: true)
        guard let largest = sizes.indices.max(by: { sizes[$0] < sizes[$1] || (sizes[$0] == sizes[$1] && $0 > $1) }) else { return self }
        return BinaryMask(width: width, height: height, bits: labels.map { $0 == largest })
    }

    /// Unset regions that do not touch the image's edge become set.
    func holesFilled() -> BinaryMask {
        let (labels, sizes) = components(of: false)
        var touchesEdge = [Bool](repeating: false, count: sizes.count)
        for y in 0..<height {
            for x in 0..<width where x == 0 || y == 0 || x == width - 1 || y == height - 1 {
                let label = labels[y * width + x]
                if label >= 0 { touchesEdge[label] = true }
            }
        }
        return BinaryMask(width: width, height: height, bits: bits.indices.map { bits[$0] || !touchesEdge[labels[$0]] })
    }

    /// Centre of mass in pixel units (a pixel's centre is at +0.5).
    var centroid: (x: Double, y: Double) {
        var sx = 0.0, sy = 0.0, n = 0.0
        for y in 0..<height {
            for x in 0..<width where self[x, y] {
                sx += Double(x) + 0.5
                sy += Double(y) + 0.5
                n += 1
            }
        }
        return n > 0 ? (sx / n, sy / n) : (0, 0)
    }

    /// Pixel-edge bounds of the set pixels: `minX..<maxX`, `minY..<maxY`.
    var boundingBox: (minX: Int, minY: Int, maxX: Int, maxY: Int) {
        var minX = width, minY = height, maxX = 0, maxY = 0
        for y in 0..<height {
            for x in 0..<width where self[x, y] {
                minX = min(minX, x)
                minY = min(minY, y)
                maxX = max(maxX, x + 1)
                maxY = max(maxY, y + 1)
            }
        }
        return (minX, minY, maxX, maxY)
    }

    /// Set pixels with at least one unset (or outside) 4-neighbour.
    var boundaryPixels: [(x: Int, y: Int)] {
        var result: [(x: Int, y: Int)] = []
        for y in 0..<height {
            for x in 0..<width where self[x, y] {
                let interior = x > 0 && x < width - 1 && y > 0 && y < height - 1
                    && self[x - 1, y] && self[x + 1, y] && self[x, y - 1] && self[x, y + 1]
                if !interior { result.append((x, y)) }
            }
        }
        return result
    }

    /// The convex hull of the set pixels' squares (their corners), counter-clockwise in image
    /// coordinates, so a filled axis-aligned rectangle is its own hull.
    var convexHull: [(x: Double, y: Double)] {
        var corners = Set<Int>()
        let stride = width + 1
        for (x, y) in boundaryPixels {
            for (cx, cy) in [(x, y), (x + 1, y), (x, y + 1), (x + 1, y + 1)] { corners.insert(cy * stride + cx) }
        }
        let points = corners.map { (x: $0 % stride, y: $0 / stride) }.sorted { $0.x != $1.x ? $0.x < $1.x : $0.y < $1.y }
        guard points.count >= 3 else { return points.map { (Double($0.x), Double($0.y)) } }
        func cross(_ o: (x: Int, y: Int), _ a: (x: Int, y: Int), _ b: (x: Int, y: Int)) -> Int {
            (a.x - o.x) * (b.y - o.y) - (a.y - o.y) * (b.x - o.x)
        }
        var lower: [(x: Int, y: Int)] = [], upper: [(x: Int, y: Int)] = []
        for p in points {
            while lower.count >= 2 && cross(lower[lower.count - 2], lower[lower.count - 1], p) <= 0 { lower.removeLast() }
            lower.append(p)
        }
        for p in points.reversed() {
            while upper.count >= 2 && cross(upper[upper.count - 2], upper[upper.count - 1], p) <= 0 { upper.removeLast() }
            upper.append(p)
        }
        return (lower.dropLast() + upper.dropLast()).map { (Double($0.x), Double($0.y)) }
    }
}

/// Shoelace area of a simple polygon.
func polygonArea(_ polygon: [(x: Double, y: Double)]) -> Double {
    guard polygon.count >= 3 else { return 0 }
    var twice = 0.0
    for i in polygon.indices {
        let a = polygon[i], b = polygon[(i + 1) % polygon.count]
        twice += a.x * b.y - b.x * a.y
    }
    return abs(twice) / 2
}

/// Drops, one at a time, the vertex nearest the line through its two neighbours while that
/// distance is under `tolerance`: what is left are the polygon's corners.
func simplifiedPolygon(_ polygon: [(x: Double, y: Double)], tolerance: Double) -> [(x: Double, y: Double)] {
    var vertices = polygon
    while vertices.count > 3 {
        var nearest = -1, nearestDistance = Double.infinity
        for i in vertices.indices {
            let a = vertices[(i + vertices.count - 1) % vertices.count], b = vertices[(i + 1) % vertices.count]
            let p = vertices[i]
            let dx = b.x - a.x, dy = b.y - a.y
            let chord = (dx * dx + dy * dy).squareRoot()
            let distance = chord > 0 ? abs(dx * (p.y - a.y) - dy * (p.x - a.x)) / chord
                : ((p.x - a.x) * (p.x - a.x) + (p.y - a.y) * (p.y - a.y)).squareRoot()
            if distance < nearestDistance { nearest = i; nearestDistance = distance }
        }
        guard nearestDistance < tolerance else { break }
        vertices.remove(at: nearest)
    }
    return vertices
}
