import Foundation
import KilnImage
import KilnSceneAnalysis
import Testing

/// The scene analyser on exact renders of the grammar (Fixtures/ground-truth, written by
/// scripts/default-model/analyser_fixtures.py from scenes.py; some jittered, some blurred):
/// before it judges a model's pictures, it must read the ground truth right.
struct SceneAnalyserTests {
    struct Fixture: Decodable {
        let file: String
        let prompt: String
        let size: Int
        let jitter: [Double]?
        let blur: Double?
    }

    struct FixtureList: Decodable {
        let scenes: [Fixture]
    }

    static let folder: URL = Bundle.module.resourceURL!.appendingPathComponent("Fixtures").appendingPathComponent("ground-truth")

    static func fixtures() throws -> [Fixture] {
        try JSONDecoder().decode(FixtureList.self, from: Data(contentsOf: folder.appendingPathComponent("scenes.json"))).scenes
    }

    @Test func readsTheGroundTruthScenes() throws {
        let analyser = SceneAnalyser()
        let fixtures = try Self.fixtures()
        var correct = (colour: 0, background: 0, shape: 0, position: 0, size: 0)
        var misses: [String] = []
        for fixture in fixtures {
            let expected = try #require(SceneDescription(prompt: fixture.prompt), "not a grammar prompt: \(fixture.prompt)")
            let image = try PNGImage(contentsOf: Self.folder.appendingPathComponent(fixture.file))
            #expect(image.width == fixture.size && image.height == fixture.size)
            let analysis = analyser.analyse(image)
            let agreement = analysis.agreement(with: expected)
            correct.colour += agreement.colour ? 1 : 0
            correct.background += agreement.background ? 1 : 0
            correct.shape += agreement.shape ? 1 : 0
            correct.position += agreement.position ? 1 : 0
            correct.size += agreement.size ? 1 : 0
            if !agreement.all { misses.append("\(fixture.file) \(fixture.prompt) -> \(analysis)") }
        }
        let n = Double(fixtures.count)
        let rates = (colour: Double(correct.colour) / n, background: Double(correct.background) / n, shape: Double(correct.shape) / n,
                     position: Double(correct.position) / n, size: Double(correct.size) / n)
        print("scene analyser on \(fixtures.count) ground-truth scenes: colour \(rates.colour) background \(rates.background) "
            + "shape \(rates.shape) position \(rates.position) size \(rates.size)")
        for miss in misses { print("  miss: \(miss)") }
        #expect(rates.colour >= 0.98)
        #expect(rates.background >= 0.98)
        #expect(rates.position >= 0.98)
        #expect(rates.shape >= 0.95)
        #expect(rates.size >= 0.95)
    }

    /// The fixtures use every word of the grammar, at 64x64 and larger.
    @Test func fixturesCoverTheGrammar() throws {
        let fixtures = try Self.fixtures()
        #expect(fixtures.count >= 60)
        let scenes = fixtures.compactMap { SceneDescription(prompt: $0.prompt) }
        #expect(scenes.count == fixtures.count)
        let grammar = SceneGrammar.kilnShapes
        #expect(Set(scenes.map(\.colour)) == Set(grammar.colours.map(\.name)))
        #expect(Set(scenes.map(\.background)) == Set(grammar.colours.map(\.name)))
        #expect(Set(scenes.map(\.shape)) == Set(SceneShape.allCases))
        #expect(Set(scenes.map(\.position)) == Set(grammar.positions.map(\.name)))
        #expect(Set(scenes.map(\.size)) == Set(grammar.sizes.map(\.name)))
        #expect(Set(fixtures.map(\.size)).count >= 2 && fixtures.map(\.size).min() == 64)
        #expect(scenes.allSatisfy { $0.colour != $0.background })
    }

    @Test func parsesPromptsOfTheGrammar() {
        let scene = SceneDescription(prompt: "a large red circle on a blue background, top right")
        #expect(scene == SceneDescription(size: "large", colour: "red", shape: .circle, background: "blue", position: "top right"))
        #expect(SceneDescription(prompt: "A small  white star on a black background")?.position == "center")
        #expect(scene?.prompt() == "a large red circle on a blue background, top right")
        #expect(SceneDescription(prompt: "a large red hexagon on a blue background") == nil)
        #expect(SceneDescription(prompt: "a large red circle on a blue background, middle") == nil)
        #expect(SceneDescription(prompt: "a photo of an astronaut riding a horse") == nil)
    }

    /// A picture of one flat colour has a background and nothing else.
    @Test func aPlainPictureHasNoForeground() {
        let grey = [UInt8](repeating: 20, count: 64 * 64 * 3)
        let analysis = SceneAnalyser().analyse(rgb: grey, width: 64, height: 64)
        #expect(analysis.background == "black")
        #expect(analysis.colour == nil && analysis.shape == nil && analysis.position == nil)
        #expect(analysis.foregroundFraction == 0)
    }

    /// Shapes drawn here, not by scenes.py: an axis-aligned rectangle of pixels is a square, a
    /// disc a circle, whatever the colours and where they are.
    @Test func drawnShapesAreNamed() {
        func draw(_ inside: (Double, Double) -> Bool, colour: [UInt8], on background: [UInt8]) -> [UInt8] {
            var pixels: [UInt8] = []
            for y in 0..<80 {
                for x in 0..<80 { pixels += inside(Double(x) + 0.5, Double(y) + 0.5) ? colour : background }
            }
            return pixels
        }
        let analyser = SceneAnalyser()
        let square = analyser.analyse(rgb: draw({ $0 >= 48 && $0 < 72 && $1 >= 10 && $1 < 34 }, colour: [240, 240, 240], on: [25, 60, 210]), width: 80, height: 80)
        #expect(square.shape == .square && square.colour == "white" && square.background == "blue" && square.position == "top right")
        #expect(square.size == "small")
        let disc = analyser.analyse(rgb: draw({ ($0 - 40) * ($0 - 40) + ($1 - 40) * ($1 - 40) < 400 }, colour: [250, 120, 25], on: [240, 230, 40]), width: 80, height: 80)
        #expect(disc.shape == .circle && disc.colour == "orange" && disc.background == "yellow" && disc.position == "center" && disc.size == "large")
        #expect(abs((disc.centroidX ?? 0) - 0.5) < 0.01 && abs((disc.centroidY ?? 0) - 0.5) < 0.01)
    }

    @Test func readsAModelsSceneGrammarFile() throws {
        let json = """
        {"image_size": 64, "default_position": "center",
         "colours": {"white": [245, 245, 245], "red": [220, 30, 30], "green": [30, 170, 60], "blue": [30, 70, 220],
                     "yellow": [250, 225, 40], "orange": [240, 120, 20], "purple": [135, 50, 185], "black": [20, 20, 20]},
         "sizes": {"large": 0.5, "small": 0.3},
         "positions": {"center": [0.5, 0.5], "top left": [0.27, 0.27], "top right": [0.73, 0.27],
                       "bottom left": [0.27, 0.73], "bottom right": [0.73, 0.73]}}
        """
        #expect(try SceneGrammar(json: Data(json.utf8)) == SceneGrammar.kilnShapes)
        #expect(throws: SceneGrammarError.self) { try SceneGrammar(json: Data("{}".utf8)) }
    }
}

/// The analyser on the default model's own pictures: the semantic test table
/// (Tests/KilnSemanticTests/Fixtures/semantic_table.json) as diffusers' StableDiffusionPipeline
/// generates it from the shipped kiln-shapes folder (float32, the folder's scheduler), written
/// by `scripts/default-model/semantic_table.py --render` into Fixtures/kiln-shapes-diffusers.
/// Holds the pictures to the semantic tests' thresholds, so the analyser and the model are
/// known to meet them before Kiln's own pipeline is judged.
struct DiffusersPicturesTests {
    @Test func theModelsPicturesShowTheirPrompts() throws {
        let folder = Bundle.module.resourceURL!.appendingPathComponent("Fixtures").appendingPathComponent("kiln-shapes-diffusers")
        let fixtures = try JSONDecoder().decode(SceneAnalyserTests.FixtureList.self,
                                                from: Data(contentsOf: folder.appendingPathComponent("scenes.json"))).scenes
        #expect(fixtures.count >= 40)
        let analyser = SceneAnalyser()
        var correct = (colour: 0, background: 0, shape: 0, position: 0)
        for fixture in fixtures {
            let expected = try #require(SceneDescription(prompt: fixture.prompt))
            let analysis = try analyser.analyse(contentsOf: folder.appendingPathComponent(fixture.file))
            let agreement = analysis.agreement(with: expected)
            correct.colour += agreement.colour ? 1 : 0
            correct.background += agreement.background ? 1 : 0
            correct.shape += agreement.shape ? 1 : 0
            correct.position += agreement.position ? 1 : 0
            if !(agreement.colour && agreement.background && agreement.shape && agreement.position) {
                print("  diffusers picture miss: \(fixture.file) \(fixture.prompt) -> \(analysis)")
            }
        }
        let n = Double(fixtures.count)
        print("scene analyser on \(fixtures.count) diffusers pictures of kiln-shapes: colour \(Double(correct.colour) / n) "
            + "background \(Double(correct.background) / n) shape \(Double(correct.shape) / n) position \(Double(correct.position) / n)")
        #expect(Double(correct.colour) / n >= 0.9)
        #expect(Double(correct.background) / n >= 0.9)
        #expect(Double(correct.position) / n >= 0.9)
        #expect(Double(correct.shape) / n >= 0.8)
    }
}
