import Foundation
import Kiln
import Testing

/// AUTOMATIC1111's prompt syntax: the parser against the examples A1111 documents for
/// `parse_prompt_attention` (weights compared exactly, as Python computes them), chunking, and
/// the weighting against its definition on the tiny models' encoders.
@Suite struct A1111PromptTests {
    typealias F = A1111Prompt.Fragment

    static let documented: [(String, [F])] = [
        ("normal text", [F("normal text", 1)]),
        ("an (important) word", [F("an ", 1), F("important", 1.1), F(" word", 1)]),
        ("(unbalanced", [F("unbalanced", 1.1)]),
        (#"\(literal\]"#, [F("(literal]", 1)]),
        ("(unnecessary)(parens)", [F("unnecessaryparens", 1.1)]),
        ("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).", [
            F("a ", 1), F("house", 1.5730000000000004), F(" ", 1.1), F("on", 1), F(" a ", 1.1), F("hill", 0.55),
            F(", sun, ", 1.1), F("sky", 1.4641000000000006), F(".", 1.1),
        ]),
        // Beyond the documented ones: square brackets, nesting, stray closers, colons, BREAK.
        ("[word]", [F("word", 1 / 1.1)]),
        ("((word))", [F("word", 1.1 * 1.1)]),
        ("(word:1.3)", [F("word", 1.3)]),
        ("(word: 0.5 )", [F("word", 0.5)]),
        ("a) b]", [F("a) b]", 1)]),
        ("time: 12:30", [F("time: 12:30", 1)]),
        ("a:1.2) b", [F("a:1.2) b", 1)]),
        (#"a \\ b"#, [F(#"a \ b"#, 1)]),
        ("cat BREAK dog", [F("cat", 1), F("BREAK", -1), F("dog", 1)]),
        ("BREAKFAST", [F("BREAKFAST", 1)]),
        ("(cat BREAK dog)", [F("cat", 1.1), F("BREAK", -1.1), F("dog", 1.1)]),
        ("", [F("", 1)]),
    ]

    @Test(arguments: documented.indices)
    func parses(_ index: Int) {
        let (prompt, expected) = Self.documented[index]
        #expect(A1111Prompt.parse(prompt) == expected, "\(prompt)")
    }

    @Test func plainTextDropsTheSyntax() {
        #expect(A1111Prompt.plainText("a (red:1.3) [boat] BREAK at \\(sea\\)") == "a red boat at (sea)")
    }

    static func tokenizer() throws -> CLIPTokenizer {
        try CLIPTokenizer.load(folder: try PipelineFixtures.modelFolder("sd1").appendingPathComponent("tokenizer"))
    }

    @Test func chunksOf75TokensBreakAndCommaWrap() throws {
        let tokenizer = try Self.tokenizer()
        let words = Array(repeating: "boat", count: 80).joined(separator: " ")
        let long = A1111PromptChunks(words, tokenizer: tokenizer).chunks
        #expect(long.count == 2)
        #expect(long.allSatisfy { $0.ids.count == 77 && $0.weights.count == 77 })
        #expect(long[0].ids.first == tokenizer.bosTokenID && long[0].ids.last == tokenizer.eosTokenID)
        #expect(Array(long[1].ids.prefix(7)) == [tokenizer.bosTokenID] + Array(repeating: tokenizer.vocabulary["boat</w>"]!, count: 5) + [tokenizer.eosTokenID])

        let broken = A1111PromptChunks("a red boat BREAK a blue sky", tokenizer: tokenizer).chunks
        #expect(broken.map(\.ids) == [tokenizer.encode("a red boat", padding: true, truncation: true), tokenizer.encode("a blue sky", padding: true, truncation: true)])

        // 70 words, a comma, then 10 more: the chunk ends after the comma and the 4 words after
        // it that fit move on to the next chunk with the rest.
        let wrapped = A1111PromptChunks(Array(repeating: "boat", count: 70).joined(separator: " ") + ", " + Array(repeating: "sky", count: 10).joined(separator: " "), tokenizer: tokenizer).chunks
        #expect(wrapped.count == 2)
        let comma = tokenizer.vocabulary[",</w>"]!
        #expect(wrapped[0].ids[71] == comma && wrapped[0].ids[72] == tokenizer.eosTokenID)
        #expect(Array(wrapped[1].ids.prefix(11)) == [tokenizer.bosTokenID] + Array(repeating: tokenizer.vocabulary["sky</w>"]!, count: 10))

        let weighted = A1111PromptChunks("a (red:1.5) boat", tokenizer: tokenizer).chunks
        #expect(weighted[0].ids == tokenizer.encode("a red boat", padding: true, truncation: true))
        #expect(weighted[0].weights.prefix(5) == [1, 1, 1.5, 1, 1])
    }

    /// The weighting from its definition, in f64: z · w, then times mean(z) / mean(z · w).
    static func reference(_ states: [Float], width: Int, weights: [Float]) -> [Float] {
        let original = states.reduce(0.0) { $0 + Double($1) } / Double(states.count)
        let weighted = (0..<states.count).map { Double(states[$0]) * Double(weights[$0 / width]) }
        let mean = weighted.reduce(0, +) / Double(weighted.count)
        return weighted.map { Float($0 * original / mean) }
    }

    @Test func emphasisMatchesItsDefinition() {
        let width = 3
        let states: [Float] = (0..<(5 * width)).map { Float(sin(Double($0) * 1.7)) + 0.3 }
        let weights: [Float] = [1, 1.21, 0.5, 1, 1.5]
        let result = A1111Emphasis.apply(states, width: width, weights: weights)
        for (actual, expected) in zip(result, Self.reference(states, width: width, weights: weights)) {
            #expect(abs(actual - expected) <= 1e-6 * max(1, abs(expected)))
        }
        #expect(A1111Emphasis.apply(states, width: width, weights: Array(repeating: 1, count: 5)) == states)
    }

    /// On the tiny SD1 and SDXL encoders: plain prompts are diffusers' encoding exactly, a
    /// weighted word is the plain prompt's states weighted by definition, `BREAK` gives two
    /// chunks each encoded as its own prompt.
    @Test(arguments: ["sd1", "sdxl"])
    func encodersWeightAndChunk(_ family: String) throws {
        let pipeline = try StableDiffusionPipeline(url: try PipelineFixtures.modelFolder(family), backend: CPUBackend(), dtype: .float32)
        let literal = try pipeline.promptEmbeddings(["a red boat"])
        #expect(try pipeline.promptEmbeddings(["a red boat"], syntax: .a1111).context == literal.context)

        let weighted = try pipeline.promptEmbeddings(["a (red:1.5) boat"], syntax: .a1111)
        let width = literal.context.shape[2]
        // Each encoder weights its own states (SDXL: CLIP-L's and bigG's, joined on channels).
        let widths = family == "sdxl" ? [4, width - 4] : [width]
        var expected = [Float](repeating: 0, count: literal.context.scalars.count)
        var offset = 0
        for part in widths {
            let states = (0..<77).flatMap { row in literal.context.scalars[(row * width + offset)..<(row * width + offset + part)] }
            let weights: [Float] = [1, 1, 1.5] + Array(repeating: 1, count: 74)
            let reference = Self.reference(Array(states), width: part, weights: weights)
            for row in 0..<77 { for column in 0..<part { expected[row * width + offset + column] = reference[row * part + column] } }
            offset += part
        }
        let error = zip(weighted.context.scalars, expected).map { abs($0 - $1) }.max() ?? 0
        let largest = expected.map(abs).max() ?? 1
        #expect(error <= 1e-5 * largest, "\(family): weighted states off by \(error)")
        #expect(weighted.pooled == literal.pooled, "the pooled embedding is the unweighted first chunk's")

        let broken = try pipeline.promptEmbeddings(["a red boat BREAK a blue sky"], syntax: .a1111)
        #expect(broken.context.shape == [1, 154, width])
        let sky = try pipeline.promptEmbeddings(["a blue sky"])
        #expect(Array(broken.context.scalars[..<(77 * width)]) == literal.context.scalars)
        #expect(Array(broken.context.scalars[(77 * width)...]) == sky.context.scalars)
    }

    /// A prompt past 75 tokens and a short negative one run together: the negative prompt is
    /// padded with empty chunks to the same length.
    @Test func longPromptsGenerate() throws {
        let pipeline = try Pipelines.open(try PipelineFixtures.modelFolder("sd1"), backend: CPUBackend(), dtype: .float32)
        var request = ModelFolders.request(.stableDiffusion1, pipeline: pipeline, steps: 2)
        request.conditioning = .prompt(Array(repeating: "a (red:1.2) boat", count: 30).joined(separator: ", "), negative: "blurry")
        request.options.promptSyntax = .a1111
        let result = try pipeline.generate(request)
        #expect(result.latents.scalars.allSatisfy { $0.isFinite })
        request.options.promptSyntax = .literal
        #expect(try pipeline.generate(request).latents != result.latents)
    }

    /// A text encoder with a shorter context than CLIP's 77 (kiln-shapes': 16) gets chunks of
    /// its own length, and A1111 prompts generate on it; without emphasis, as the literal prompt.
    @Test func chunksFollowTheEncodersContext() throws {
        let pipeline = try Pipelines.openDefault(backend: CPUBackend(), dtype: .float32)
        let tokenizer = try CLIPTokenizer.load(folder: try DefaultModel.requiredLocation().appendingPathComponent("tokenizer"))
        let length = tokenizer.configuration.modelMaxLength
        #expect(length < 77)
        let chunks = A1111PromptChunks("a large red circle on a blue background, top left BREAK a star", tokenizer: tokenizer).chunks
        #expect(chunks.count == 2 && chunks.allSatisfy { $0.ids.count == length && $0.weights.count == length })
        var request = pipeline.defaults.request(.prompt("a large red circle on a blue background", negative: nil), seed: 3)
        request.steps = 2
        let literal = try pipeline.generate(request)
        request.options.promptSyntax = .a1111
        #expect(try pipeline.generate(request).latents == literal.latents)
    }
}
