import Foundation

/// The five shapes of the kiln-shapes scene grammar.
public enum SceneShape: String, Sendable, CaseIterable, Codable {
    case circle, square, triangle, star, cross
}

/// The words of the scene grammar, `a {size} {colour} {shape} on a {background} background[, {position}]`,
/// and the numbers that place them in a picture (the `GRAMMAR` of `scripts/default-model/scenes.py`,
/// which the model folder also carries as `scene_grammar.json`).
public struct SceneGrammar: Sendable, Equatable {
    public struct NamedColour: Sendable, Equatable {
        public let name: String
        /// sRGB, 0-255.
        public let red: Double, green: Double, blue: Double

        public init(_ name: String, _ red: Double, _ green: Double, _ blue: Double) {
            self.name = name
            self.red = red
            self.green = green
            self.blue = blue
        }
    }

    public struct NamedSize: Sendable, Equatable {
        public let name: String
        /// Side of the shape's bounding square as a fraction of the image side.
        public let side: Double

        public init(_ name: String, side: Double) {
            self.name = name
            self.side = side
        }
    }

    public struct NamedPosition: Sendable, Equatable {
        public let name: String
        /// Centre of the shape's bounding square in fractions of the image side, y down.
        public let x: Double, y: Double

        public init(_ name: String, x: Double, y: Double) {
            self.name = name
            self.x = x
            self.y = y
        }
    }

    public let colours: [NamedColour]
    public let sizes: [NamedSize]
    public let positions: [NamedPosition]
    public let defaultPosition: String

    public init(colours: [NamedColour], sizes: [NamedSize], positions: [NamedPosition], defaultPosition: String = "center") {
        self.colours = colours
        self.sizes = sizes
        self.positions = positions
        self.defaultPosition = defaultPosition
    }

    /// The grammar kiln-shapes was trained on.
    public static let kilnShapes = SceneGrammar(
        colours: [
            NamedColour("red", 220, 30, 30),
            NamedColour("green", 30, 170, 60),
            NamedColour("blue", 30, 70, 220),
            NamedColour("yellow", 250, 225, 40),
            NamedColour("orange", 240, 120, 20),
            NamedColour("purple", 135, 50, 185),
            NamedColour("white", 245, 245, 245),
            NamedColour("black", 20, 20, 20),
        ],
        sizes: [NamedSize("small", side: 0.30), NamedSize("large", side: 0.50)],
        positions: [
            NamedPosition("top left", x: 0.27, y: 0.27),
            NamedPosition("top right", x: 0.73, y: 0.27),
            NamedPosition("bottom left", x: 0.27, y: 0.73),
            NamedPosition("bottom right", x: 0.73, y: 0.73),
            NamedPosition("center", x: 0.5, y: 0.5),
        ])

    /// Reads a model folder's `scene_grammar.json` (keys `colours`, `sizes`, `positions`,
    /// `default_position`). Names keep the order of `kilnShapes` where they appear there.
    public init(json data: Data) throws {
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let colours = object["colours"] as? [String: [Double]],
              let sizes = object["sizes"] as? [String: Double],
              let positions = object["positions"] as? [String: [Double]] else {
            throw SceneGrammarError.malformed("scene_grammar.json needs colours, sizes and positions")
        }
        func ordered(_ names: some Collection<String>, reference: [String]) -> [String] {
            names.sorted { a, b in
                let ia = reference.firstIndex(of: a) ?? Int.max, ib = reference.firstIndex(of: b) ?? Int.max
                return ia != ib ? ia < ib : a < b
            }
        }
        let base = SceneGrammar.kilnShapes
        self.colours = try ordered(colours.keys, reference: base.colours.map(\.name)).map { name in
            guard let rgb = colours[name], rgb.count == 3 else { throw SceneGrammarError.malformed("colour \(name)") }
            return NamedColour(name, rgb[0], rgb[1], rgb[2])
        }
        self.sizes = ordered(sizes.keys, reference: base.sizes.map(\.name)).map { NamedSize($0, side: sizes[$0]!) }
        self.positions = try ordered(positions.keys, reference: base.positions.map(\.name)).map { name in
            guard let xy = positions[name], xy.count == 2 else { throw SceneGrammarError.malformed("position \(name)") }
            return NamedPosition(name, x: xy[0], y: xy[1])
        }
        self.defaultPosition = object["default_position"] as? String ?? "center"
    }

    public func colour(named name: String) -> NamedColour? { colours.first { $0.name == name } }
}

public enum SceneGrammarError: Error, CustomStringConvertible, Equatable {
    case malformed(String)

    public var description: String {
        switch self {
        case .malformed(let detail): "malformed scene grammar: \(detail)"
        }
    }
}

/// One scene of the grammar: what a prompt asks for, or what a picture shows.
public struct SceneDescription: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var size: String
    public var colour: String
    public var shape: SceneShape
    public var background: String
    public var position: String

    public init(size: String, colour: String, shape: SceneShape, background: String, position: String) {
        self.size = size
        self.colour = colour
        self.shape = shape
        self.background = background
        self.position = position
    }

    /// Parses `a {size} {colour} {shape} on a {background} background[, {position}]` (the position
    /// defaults to the grammar's default); nil when the prompt is not of the grammar.
    public init?(prompt: String, grammar: SceneGrammar = .kilnShapes) {
        let text = prompt.lowercased().split(whereSeparator: \.isWhitespace).joined(separator: " ")
        guard let on = text.range(of: " on a ") else { return nil }
        let subject = text[..<on.lowerBound].split(separator: " ").map(String.init)
        var rest = String(text[on.upperBound...])
        var position = grammar.defaultPosition
        if let comma = rest.firstIndex(of: ",") {
            position = rest[rest.index(after: comma)...].trimmingCharacters(in: .whitespaces)
            rest = String(rest[..<comma])
        }
        let backgroundWords = rest.split(separator: " ").map(String.init)
        guard subject.count == 4, subject[0] == "a", backgroundWords.count == 2, backgroundWords[1] == "background",
              grammar.sizes.contains(where: { $0.name == subject[1] }),
              grammar.colour(named: subject[2]) != nil,
              let shape = SceneShape(rawValue: subject[3]),
              grammar.colour(named: backgroundWords[0]) != nil,
              grammar.positions.contains(where: { $0.name == position }) else { return nil }
        self.init(size: subject[1], colour: subject[2], shape: shape, background: backgroundWords[0], position: position)
    }

    /// The grammar's prompt for this scene.
    public func prompt(withPosition: Bool = true) -> String {
        "a \(size) \(colour) \(shape.rawValue) on a \(background) background" + (withPosition ? ", \(position)" : "")
    }

    public var description: String { prompt() }
}
