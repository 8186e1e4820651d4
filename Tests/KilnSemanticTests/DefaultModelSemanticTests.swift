import Foundation
import Kiln
import KilnDefaultModel
import KilnSceneAnalysis
import Testing

/// Tests that check meaning: the default model (kiln-shapes) generates the prompts of
/// Fixtures/semantic_table.json (written by scripts/default-model/semantic_table.py: prompts of
/// the grammar with fixed seeds) on each backend, and the scene analyser reads colour,
/// background, position and shape back from the pixels. Each must be right for at least the
/// table's share of the prompts (90%; shape 80%).
///
/// Cost: 50 generations of 12 guided steps at 64x64. In a debug build the CPU backend's matmul
/// is unoptimised and the first picture alone took over 4 minutes on the 2-core machine, so
/// these need an optimised KilnCPU (a release build, or -O for that target) to fit in CI.
/// Measured in a release build (`swift test -c release`): CPU f32 207 s, Vulkan on lavapipe f16
/// 91 s cold; both read colour, background, position and size 100% and shape 96% (the same two
/// pictures missed as in diffusers' pictures of the table).
@Suite(.serialized) struct DefaultModelSemanticTests {
    struct Table: Decodable {
        struct Case: Decodable {
            let prompt: String
            let seed: UInt64
        }

        struct Thresholds: Decodable {
            let colour: Double
            let background: Double
            let position: Double
            let shape: Double
        }

        let width: Int
        let height: Int
        let steps: Int
        let guidance: Float
        let thresholds: Thresholds
        let cases: [Case]
    }

    struct Score: CustomStringConvertible {
        var count = 0
        var colour = 0, background = 0, position = 0, shape = 0, size = 0
        var misses: [String] = []

        func rate(_ value: Int) -> Double { Double(value) / Double(max(1, count)) }

        var description: String {
            "colour \(rate(colour)) background \(rate(background)) position \(rate(position)) shape \(rate(shape)) size \(rate(size)) of \(count)"
        }
    }

    static let vulkan: Result<VulkanBackend, Error> = Result { try VulkanBackend() }

    static func table() throws -> Table {
        let url = try #require(Bundle.module.url(forResource: "semantic_table", withExtension: "json", subdirectory: "Fixtures"))
        return try JSONDecoder().decode(Table.self, from: Data(contentsOf: url))
    }

    static func modelFolder() throws -> URL {
        try #require(DefaultModel.location(), "kiln-shapes not found in \(DefaultModel.searchedLocations.map(\.path))")
    }

    /// Generates every case of the table and judges each picture.
    /// The table's cases a backend runs: all of them, except on the CPU backend in a debug
    /// build (what the README's `swift test` makes), where one image takes about a minute, so
    /// every sixth case runs; `swift test -c release` (or KILN_SEMANTIC_FULL=1) runs them all.
    static func cases(_ table: Table, backend: Backend) -> [Table.Case] {
        var debugBuild = false
        #if DEBUG
        debugBuild = true
        #endif
        let full = ProcessInfo.processInfo.environment["KILN_SEMANTIC_FULL"] == "1"
        guard backend is CPUBackend, debugBuild, !full else { return table.cases }
        return table.cases.enumerated().filter { $0.offset % 6 == 0 }.map(\.element)
    }

    static func score(backend: Backend, dtype: DType) throws -> Score {
        let table = try table()
        let cases = cases(table, backend: backend)
        let folder = try modelFolder()
        let grammar = try SceneGrammar(json: Data(contentsOf: folder.appendingPathComponent("scene_grammar.json")))
        let analyser = SceneAnalyser(grammar: grammar)
        let pipeline = try StableDiffusionPipeline(url: folder, backend: backend, dtype: dtype)
        var score = Score()
        let started = Date()
        for (index, entry) in cases.enumerated() {
            let expected = try #require(SceneDescription(prompt: entry.prompt, grammar: grammar), "not a grammar prompt: \(entry.prompt)")
            let request = GenerationRequest(prompt: entry.prompt, width: table.width, height: table.height, steps: table.steps,
                                            guidanceScale: table.guidance, seed: entry.seed)
            let result = try pipeline.generate(request, isCancelled: { false })
            let images = try DiffusersImageProcessor.postprocess(ImageTensor(shape: result.images.shape, values: result.images.scalars))
            let analysis = analyser.analyse(try #require(images.first))
            let agreement = analysis.agreement(with: expected)
            score.count += 1
            score.colour += agreement.colour ? 1 : 0
            score.background += agreement.background ? 1 : 0
            score.position += agreement.position ? 1 : 0
            score.shape += agreement.shape ? 1 : 0
            score.size += agreement.size ? 1 : 0
            if !(agreement.colour && agreement.background && agreement.position && agreement.shape) {
                score.misses.append("seed \(entry.seed) \(entry.prompt) -> \(analysis)")
            }
            // Progress on stderr, unbuffered: a whole table takes minutes on a CPU device.
            let line = "\(backend.name) \(dtype.shortName): \(index + 1)/\(cases.count) after "
                + "\(Int(Date().timeIntervalSince(started))) s: \(entry.prompt) -> \(analysis.scene?.prompt() ?? "\(analysis)")\n"
            FileHandle.standardError.write(Data(line.utf8))
        }
        return score
    }

    static func expectMeaning(_ score: Score, _ label: String, backend: Backend) throws {
        let table = try table()
        let thresholds = table.thresholds
        print("\(label): \(score)")
        for miss in score.misses { print("  \(label) miss: \(miss)") }
        #expect(score.count == cases(table, backend: backend).count)
        #expect(score.rate(score.colour) >= thresholds.colour, "\(label): \(score)")
        #expect(score.rate(score.background) >= thresholds.background, "\(label): \(score)")
        #expect(score.rate(score.position) >= thresholds.position, "\(label): \(score)")
        #expect(score.rate(score.shape) >= thresholds.shape, "\(label): \(score)")
    }

    @Test func theTableCoversTheGrammar() throws {
        let scenes = try Self.table().cases.compactMap { SceneDescription(prompt: $0.prompt) }
        #expect(scenes.count >= 40)
        let grammar = SceneGrammar.kilnShapes
        #expect(Set(scenes.map(\.colour)) == Set(grammar.colours.map(\.name)))
        #expect(Set(scenes.map(\.background)) == Set(grammar.colours.map(\.name)))
        #expect(Set(scenes.map(\.shape)) == Set(SceneShape.allCases))
        #expect(Set(scenes.map(\.position)) == Set(grammar.positions.map(\.name)))
        #expect(Set(scenes.map(\.size)) == Set(grammar.sizes.map(\.name)))
    }

    @Test func cpuPicturesShowThePrompts() throws {
        let cpu = CPUBackend()
        try Self.expectMeaning(try Self.score(backend: cpu, dtype: .float32), "cpu f32", backend: cpu)
    }

    /// f16 storage where the device has it (what `kiln generate` uses by default), else f32.
    @Test func vulkanPicturesShowThePrompts() throws {
        let gpu = try Self.vulkan.get()
        let dtype: DType = gpu.device.float16Storage ? .float16 : .float32
        try Self.expectMeaning(try Self.score(backend: gpu, dtype: dtype), "vulkan \(dtype.shortName)", backend: gpu)
    }
}
