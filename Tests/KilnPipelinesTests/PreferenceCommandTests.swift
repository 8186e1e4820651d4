import Foundation
import Kiln
import Testing

/// `kiln preference score` and `rank` as a user runs them: the built executable on the tiny
/// models and the recorded pairs, on the CPU and on Vulkan, the JSON against torch's numbers, the
/// table, and bad input refused with exit code 2 before any work, naming the line and field.
@Suite(.serialized) struct PreferenceCommandTests {
    static func kiln(_ arguments: [String]) throws -> GenerateCommandTests.Outcome { try GenerateCommandTests.kiln(arguments) }

    static func models(_ family: String) throws -> [String] {
        ["--model", PreferenceFixtures.tunedModel(family).path, "--reference", try PipelineFixtures.modelFolder(family).path]
    }

    static func arguments(_ testCase: PreferenceFixtures.Case) -> [String] {
        ["--draws", "\(testCase.draws)", "--seed", "\(testCase.seed)", "--convention", testCase.convention, "--beta", "\(testCase.beta)",
         "--resolution", "\(testCase.resolution)"]
    }

    static func json(_ output: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
    }

    /// The JSON's pairs as scores, for the fixtures' comparison.
    static func scores(_ object: [String: Any]) throws -> [PreferencePairScore] {
        let pairs = try #require(object["pairs"] as? [[String: Any]])
        return try pairs.map { pair in
            let draws = try #require(pair["draws"] as? [[String: Any]])
            let data = try JSONSerialization.data(withJSONObject: draws)
            return PreferencePairScore(prompt: try #require(pair["prompt"] as? String), draws: try JSONDecoder().decode([PreferenceDrawScore].self, from: data))
        }
    }

    static func scratch() throws -> URL { try GenerateCommandTests.scratch() }

    @Test("score --json on the CPU and on Vulkan matches torch; the summary has every field", arguments: ["cpu", "vulkan"])
    func scoreJSON(_ backend: String) throws {
        for testCase in PreferenceFixtures.cases where testCase.family != "sd2" {
            let run = try Self.kiln(["preference", "score"] + (try Self.models(testCase.family)) + Self.arguments(testCase)
                + ["--backend", backend, "--json", PreferenceFixtures.pairsFile(testCase.family).path])
            #expect(run.status == 0, "\(testCase.family) \(backend): \(run.errors)")
            guard run.status == 0 else { continue }
            #expect(run.errors.contains("pair 4/4"), "progress on stderr: \(run.errors)")
            let object = try Self.json(run.output)
            let summary = try #require(object["summary"] as? [String: Any])
            for key in ["pairs", "draws", "loss", "implicit_acc", "implicit_acc_ci95", "model_loss", "ref_loss", "seconds"] {
                #expect(summary[key] != nil, "summary.\(key)")
            }
            #expect(summary["pairs"] as? Int == 4 && summary["draws"] as? Int == testCase.draws)
            let interval = try #require(summary["implicit_acc_ci95"] as? [Double])
            let accuracy = try #require(summary["implicit_acc"] as? Double)
            #expect(interval.count == 2 && interval[0] <= accuracy && accuracy <= interval[1])
            let firstPair = try #require((object["pairs"] as? [[String: Any]])?.first)
            for key in ["prompt", "draws", "inside_term", "loss", "implicit_acc"] { #expect(firstPair[key] != nil, "pairs[0].\(key)") }
            PreferenceFixtures.expectMatch(
                try Self.scores(object), try PreferenceFixtures.record(testCase.family), settings: try PreferenceFixtures.settings(testCase),
                tolerance: backend == "cpu" ? 1e-4 : 1e-2, label: "kiln preference score \(testCase.family) \(backend)")
        }
    }

    @Test func scorePrintsATableAndTheSameNumbersTwice() throws {
        let testCase = try #require(PreferenceFixtures.cases.first { $0.family == "sd1" })
        let arguments = ["preference", "score"] + (try Self.models("sd1")) + Self.arguments(testCase)
            + ["--backend", "cpu", "--quiet", PreferenceFixtures.pairsFile("sd1").path]
        let table = try Self.kiln(arguments)
        #expect(table.status == 0, "\(table.errors)")
        #expect(table.errors.isEmpty, "--quiet: \(table.errors)")
        for text in ["implicit accuracy", "95% CI", "DPO loss", "reference loss", "4 pairs x 3 draws", "a red fox in the snow"] {
            #expect(table.output.contains(text), "table lacks '\(text)':\n\(table.output)")
        }
        let again = try Self.kiln(arguments)
        let stable = { (text: String) in text.split(separator: "\n").filter { !$0.contains("pairs/min") } }
        #expect(stable(again.output) == stable(table.output), "same seed, same table")
    }

    @Test func rankOrdersImagesBestFirst() throws {
        let record = try #require(PreferenceFixtures.records?.rank)
        let images = record.images.map(\.image).sorted().map { PreferenceFixtures.folder.appendingPathComponent($0).path }
        let run = try Self.kiln(["preference", "rank"] + (try Self.models(record.family))
            + ["--prompt", record.prompt, "--draws", "\(record.draws)", "--seed", "\(record.seed)", "--backend", "cpu", "--json"] + images)
        #expect(run.status == 0, "\(run.errors)")
        let ranked = try #require(try Self.json(run.output)["images"] as? [[String: Any]])
        #expect(ranked.compactMap { ($0["image"] as? String).map { URL(fileURLWithPath: $0).lastPathComponent } }
            == record.order.map { URL(fileURLWithPath: $0).lastPathComponent })
        #expect(ranked.compactMap { $0["rank"] as? Int } == Array(1...record.images.count))
        let table = try Self.kiln(["preference", "rank"] + (try Self.models(record.family))
            + ["--prompt", record.prompt, "--draws", "\(record.draws)", "--seed", "\(record.seed)", "--backend", "cpu"] + images)
        #expect(table.status == 0 && table.output.contains("reward"), "\(table.output)\(table.errors)")
    }

    @Test func badInputExitsTwoBeforeAnyWorkNamingTheLineAndField() throws {
        let folder = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let images = PreferenceFixtures.folder.appendingPathComponent("images")
        let winner = images.appendingPathComponent("fox_a.png").path, loser = images.appendingPathComponent("fox_b.png").path
        let jpeg = folder.appendingPathComponent("photo.jpg")
        try Data([0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 0x4A, 0x46, 0x49, 0x46, 0x00, 0x01]).write(to: jpeg)
        func pairs(_ lines: [String]) throws -> String {
            let file = folder.appendingPathComponent("pairs-\(UUID().uuidString).jsonl")
            try (lines.joined(separator: "\n") + "\n").write(to: file, atomically: true, encoding: .utf8)
            return file.path
        }
        let good = "{\"prompt\": \"a fox\", \"winner\": \"\(winner)\", \"loser\": \"\(loser)\"}"
        let models = try Self.models("sd1")
        let cases: [(arguments: [String], message: String)] = [
            (models + [try pairs([good, "{\"prompt\": \"a fox\", \"winner\": \"\(winner)\"}"])], "line 2: field 'loser': missing"),
            (models + [try pairs(["# a comment", "", good, "{\"prompt\": 3, \"winner\": \"a.png\", \"loser\": \"b.png\"}"])], "line 4: field 'prompt': expected a string"),
            (models + [try pairs(["not json"])], "line 1: expected a JSON object"),
            (models + [try pairs(["{\"prompt\": \"a\", \"winner\": \"missing.png\", \"loser\": \"\(loser)\"}"])], "line 1: field 'winner'"),
            (models + [try pairs(["{\"prompt\": \"a\", \"winner\": \"\(winner)\", \"loser\": \"photo.jpg\"}"])], "a JPEG file"),
            (models + [try pairs([])], "holds no pairs"),
            (models + ["--convention", "dpo", try pairs([good])], "--convention must be sd or sdxl"),
            (models + ["--lora", "tuned.safetensors", try pairs([good])], "--lora tuned.safetensors: no such file"),
            (models + ["--draws", "0", try pairs([good])], "--draws 0"),
            (models + ["--beta", "-1", try pairs([good])], "--beta"),
            (models + ["--resolution", "60", try pairs([good])], "resolution 60"),
            (models + ["--dtype", "bf8", try pairs([good])], "--dtype"),
            (["--model", PreferenceFixtures.tunedModel("sdxl").path, "--reference", try PipelineFixtures.modelFolder("sd1").path, try pairs([good])],
             "the tuned U-Net attends to"),
            (["--model", "/nonexistent/model", "--reference", try PipelineFixtures.modelFolder("sd1").path, try pairs([good])], "no such file"),
        ]
        for (arguments, message) in cases {
            let run = try Self.kiln(["preference", "score", "--backend", "cpu"] + arguments)
            #expect(run.status == 2, "\(message): exit \(run.status): \(run.errors)")
            #expect(run.errors.contains(message), "expected '\(message)' in: \(run.errors)")
            #expect(run.output.isEmpty, "\(message): nothing on stdout: \(run.output)")
        }
        let rank = try Self.kiln(["preference", "rank", "--backend", "cpu"] + models + ["--prompt", "a fox", jpeg.path])
        #expect(rank.status == 2 && rank.errors.contains("a JPEG file"), "\(rank.errors)")
    }

    @Test func anImageThatBreaksAfterItsHeaderFailsWithExitOneNamingThePair() throws {
        let folder = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = try Data(contentsOf: PreferenceFixtures.folder.appendingPathComponent("images/fox_a.png"))
        // Keep the signature, IHDR and the start of IDAT: the header reads, the pixels do not.
        try source.prefix(200).write(to: folder.appendingPathComponent("broken.png"))
        try FileManager.default.copyItem(at: PreferenceFixtures.folder.appendingPathComponent("images/fox_b.png"),
                                         to: folder.appendingPathComponent("fine.png"))
        let pairs = folder.appendingPathComponent("pairs.jsonl")
        try """
            {"prompt": "a fox", "winner": "fine.png", "loser": "fine.png"}
            {"prompt": "a fox", "winner": "fine.png", "loser": "broken.png"}

            """.write(to: pairs, atomically: true, encoding: .utf8)
        let run = try Self.kiln(["preference", "score", "--backend", "cpu", "--quiet"] + (try Self.models("sd1")) + [pairs.path])
        #expect(run.status == 1, "exit \(run.status): \(run.errors)")
        #expect(run.errors.contains("line 2: field 'loser'"), "\(run.errors)")
    }
}
