import Foundation
import Kiln
import KilnPreference
import Testing

/// `PreferenceScorer` against diffusers and torch (Tests/Fixtures/generate_preference_fixtures.py)
/// on tiny sd1, sd2 (v-prediction, 48 px) and sdxl models with perturbed U-Nets: the VAE's
/// posterior means, the draws, every loss, inside term and DPO loss, the implicit accuracies
/// exactly, on the CPU and on Vulkan; and what the scorer refuses.
@Suite(.serialized) struct PreferenceParityTests {
    static let vulkan: Result<VulkanBackend, Error> = Result { try VulkanBackend() }

    static func scorer(_ family: String, backend: Backend, dtype: DType, tuned: URL? = nil, maximumBatch: Int? = nil) throws -> PreferenceScorer {
        try PreferenceScorer(
            reference: Pipelines.Source(url: try PipelineFixtures.modelFolder(family)), tuned: tuned ?? PreferenceFixtures.tunedModel(family),
            backend: backend, dtype: dtype, maximumBatch: maximumBatch)
    }

    static func score(_ testCase: PreferenceFixtures.Case, backend: Backend, dtype: DType, maximumBatch: Int? = nil) throws -> [PreferencePairScore] {
        let pairsFile = PreferenceFixtures.pairsFile(testCase.family)
        let pairs = try PreferencePairsFile.load(pairsFile)
        let scorer = try scorer(testCase.family, backend: backend, dtype: dtype, maximumBatch: maximumBatch)
        return try PreferenceEvaluation.score(pairs, scorer: scorer, settings: try PreferenceFixtures.settings(testCase), pairsFile: pairsFile.path)
    }

    @Test("fixtures are present")
    func fixturesPresent() {
        #expect(PreferenceFixtures.cases.map(\.family) == ["sd1", "sd2", "sdxl"])
    }

    @Test("CPU: losses within 1e-4, implicit accuracies exact", arguments: PreferenceFixtures.cases)
    func cpu(_ testCase: PreferenceFixtures.Case) throws {
        let scores = try Self.score(testCase, backend: CPUBackend(), dtype: .float32)
        PreferenceFixtures.expectMatch(
            scores, try PreferenceFixtures.record(testCase.family), settings: try PreferenceFixtures.settings(testCase), tolerance: 1e-4,
            label: "\(testCase.family) cpu")
    }

    @Test("Vulkan: losses within 1e-2, implicit accuracies exact", arguments: PreferenceFixtures.cases)
    func vulkan(_ testCase: PreferenceFixtures.Case) throws {
        let gpu = try Self.vulkan.get()
        for dtype in [DType.float32, .float16] {
            let scores = try Self.score(testCase, backend: gpu, dtype: dtype)
            PreferenceFixtures.expectMatch(
                scores, try PreferenceFixtures.record(testCase.family), settings: try PreferenceFixtures.settings(testCase),
                tolerance: 1e-2, label: "\(testCase.family) vulkan \(dtype.shortName)")
        }
    }

    @Test("the batch size changes nothing but the speed")
    func batching() throws {
        let testCase = try #require(PreferenceFixtures.cases.first { $0.family == "sd1" })
        let whole = try Self.score(testCase, backend: CPUBackend(), dtype: .float32)
        let single = try Self.score(testCase, backend: CPUBackend(), dtype: .float32, maximumBatch: 1)
        let odd = try Self.score(testCase, backend: CPUBackend(), dtype: .float32, maximumBatch: 4)
        for other in [single, odd] {
            for (first, second) in zip(whole, other) {
                #expect(first.draws.map(\.timestep) == second.draws.map(\.timestep))
                for (a, b) in zip(first.draws, second.draws) {
                    #expect(abs(a.winner.model - b.winner.model) <= 1e-6 * a.winner.model)
                    #expect(abs(a.loser.reference - b.loser.reference) <= 1e-6 * a.loser.reference)
                }
            }
        }
    }

    @Test("the VAE's posterior means match diffusers' latent_dist.mean * scaling_factor")
    func posteriorMeans() throws {
        let latents = try SafeTensorsFile(url: PreferenceFixtures.folder.appendingPathComponent("latents.safetensors"))
        for testCase in PreferenceFixtures.cases {
            let scorer = try Self.scorer(testCase.family, backend: CPUBackend(), dtype: .float32)
            for name in ["fox_a", "lighthouse_a", "ramen_b", "astronaut_b"] {
                let image = try PreferenceImageFile.load(
                    PreferenceFixtures.folder.appendingPathComponent("images/\(name).png"), resolution: testCase.resolution)
                let mean = try scorer.posteriorMeans([image])
                let expected = try latents.tensor("\(testCase.family).\(name)")
                #expect(mean.shape == expected.shape.dimensions)
                let scale = expected.scalars.map(abs).max() ?? 1
                let error = zip(mean.scalars, expected.scalars).map { abs($0 - $1) }.max() ?? 0
                #expect(error <= 1e-5 * scale, "\(testCase.family) \(name): latents off by \(error / scale)")
            }
        }
    }

    @Test("rank: images best first by implicit reward, the rewards within 1e-4 of their scale")
    func rank() throws {
        let record = try #require(PreferenceFixtures.records?.rank)
        let scorer = try Self.scorer(record.family, backend: CPUBackend(), dtype: .float32)
        let settings = PreferenceSettings(draws: record.draws, seed: record.seed, convention: .sd, beta: record.beta, resolution: record.resolution)
        let paths = record.images.map(\.image).sorted().map { PreferenceFixtures.folder.appendingPathComponent($0).path }
        let ranked = try PreferenceEvaluation.rank(paths, prompt: record.prompt, scorer: scorer, settings: settings)
        #expect(ranked.map { URL(fileURLWithPath: $0.path).lastPathComponent } == record.order.map { URL(fileURLWithPath: $0).lastPathComponent })
        for (image, expected) in zip(ranked, record.images) {
            #expect(image.draws.map(\.timestep) == expected.draws.map(\.t))
            let scale = record.beta * (expected.draws.map { max($0.modelLoss, $0.refLoss) }.max() ?? 1)
            #expect(abs(image.reward - expected.reward) <= 1e-4 * scale, "\(image.path): reward \(image.reward), torch \(expected.reward)")
        }
    }

    @Test("a model scored against itself has every inside term 0, implicit accuracy 0.5 and loss ln 2")
    func againstItself() throws {
        let testCase = try #require(PreferenceFixtures.cases.first { $0.family == "sdxl" })
        let pairsFile = PreferenceFixtures.pairsFile("sdxl")
        let scorer = try Self.scorer("sdxl", backend: CPUBackend(), dtype: .float32, tuned: try PipelineFixtures.modelFolder("sdxl"))
        let scores = try PreferenceEvaluation.score(
            try PreferencePairsFile.load(pairsFile), scorer: scorer, settings: try PreferenceFixtures.settings(testCase), pairsFile: pairsFile.path)
        for draw in scores.flatMap(\.draws) {
            #expect(draw.insideTerm == 0)
            #expect(draw.implicitAccuracy == 0.5)
            #expect(abs(draw.loss - log(2)) < 1e-15)
        }
    }

    /// The merge itself is checked against diffusers' fuse_lora in LoRAParityTests; here, that the
    /// scorer's tuned U-Net is the base with the LoRA merged at its weight.
    @Test("--model BASE --lora L: at weight 0 the base against itself (loss ln 2), at weight 1 every draw differs")
    func tunedByLoRA() throws {
        let testCase = try #require(PreferenceFixtures.cases.first { $0.family == "sd1" })
        let pairsFile = PreferenceFixtures.pairsFile("sd1")
        let lora = PipelineFixtures.folder.deletingLastPathComponent().appendingPathComponent("lora/sd1_b_peft.safetensors")
        let base = try PipelineFixtures.modelFolder("sd1")
        func draws(weight: Float) throws -> [PreferenceDrawScore] {
            let scorer = try PreferenceScorer(
                reference: Pipelines.Source(url: base), tuned: base, tunedLoRA: LoRARequest(url: lora, weight: weight), backend: CPUBackend(),
                dtype: .float32)
            return try PreferenceEvaluation.score(
                try PreferencePairsFile.load(pairsFile), scorer: scorer, settings: try PreferenceFixtures.settings(testCase), pairsFile: pairsFile.path
            ).flatMap(\.draws)
        }
        for draw in try draws(weight: 0) {
            #expect(draw.insideTerm == 0)
            #expect(abs(draw.loss - log(2)) < 1e-15)
        }
        for draw in try draws(weight: 1) { #expect(draw.insideTerm != 0) }
        // sd1_a_peft also changes the text encoder, which the two models share.
        let textEncoderLoRA = lora.deletingLastPathComponent().appendingPathComponent("sd1_a_peft.safetensors")
        #expect(throws: PipelineError.self) {
            try PreferenceScorer(reference: Pipelines.Source(url: base), tuned: base, tunedLoRA: LoRARequest(url: textEncoderLoRA), backend: CPUBackend())
        }
    }

    @Test("models that cannot be resident together are refused before any work, naming both U-Nets")
    func residentTogether() throws {
        let folder = try PipelineFixtures.modelFolder("sd1")
        let reference = try StableDiffusionPipeline(url: folder, backend: CPUBackend(), dtype: .float32)
        // Room for the reference model alone, not for a second U-Net beside it.
        let backend = PipelineBehaviourTests.SmallBackend(capacity: reference.weightBytes + 1024)
        do {
            _ = try PreferenceScorer(reference: .init(url: folder), tuned: PreferenceFixtures.tunedModel("sd1"), backend: backend, dtype: .float32)
            Issue.record("expected insufficientMemory")
        } catch let PipelineError.insufficientMemory(message) {
            #expect(message.contains("resident together") && message.contains("tuned unet") && message.contains("reference unet"), "\(message)")
        }
    }

    @Test("a tuned U-Net of another family, a non-SD reference and missing paths are bad input")
    func refusals() throws {
        let sd1 = try PipelineFixtures.modelFolder("sd1")
        func expectBadInput(_ what: String, _ work: () throws -> Void) {
            do {
                try work()
                Issue.record("\(what): expected an error")
            } catch let error as PipelineError {
                #expect(error.isBadInput, "\(what): \(error)")
                print("\(what): \(error)")
            } catch {
                Issue.record("\(what): \(error)")
            }
        }
        expectBadInput("sdxl U-Net against sd1") {
            _ = try PreferenceScorer(reference: .init(url: sd1), tuned: PreferenceFixtures.tunedModel("sdxl"), backend: CPUBackend(), dtype: .float32)
        }
        expectBadInput("missing tuned model") {
            _ = try PreferenceScorer(reference: .init(url: sd1), tuned: URL(fileURLWithPath: "/nonexistent/tuned"), backend: CPUBackend(), dtype: .float32)
        }
        expectBadInput("DiT reference") {
            _ = try PreferenceScorer(reference: .init(url: DiTPipelineParityTests.model), tuned: sd1, backend: CPUBackend(), dtype: .float32)
        }
        let scorer = try Self.scorer("sd1", backend: CPUBackend(), dtype: .float32)
        expectBadInput("resolution 60") { try scorer.checkResolution(60) }
    }
}
