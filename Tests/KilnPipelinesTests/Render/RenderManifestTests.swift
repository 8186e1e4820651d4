import Foundation
import KilnRender
import Testing

/// Manifests as users write them: fields and types checked, every problem named by line and
/// field, lists and seed ranges expanded in a fixed order with stable ids, prompts from a text file.
@Suite struct RenderManifestTests {
    static func parse(_ text: String) throws -> [RenderJob] { try RenderManifest.parse(text, name: "m.jsonl") }

    @Test func linesExpandToEveryCombinationLastFieldFastest() throws {
        let jobs = try Self.parse("""
            # comments and blank lines are ignored

            {"id": "fox", "prompt": ["a fox", "a hare"], "seed": {"range": [10, 12]}, "sampler": ["euler", "ddim"], "steps": 3}
            {"prompt": "a lighthouse", "cfg_scale": 6.5, "width": 64, "height": 48}
            """)
        #expect(jobs.count == 2 * 3 * 2 + 1)
        #expect(jobs[0].id == "fox-0" && jobs[11].id == "fox-11")
        #expect(jobs[0].settings.prompt == "a fox" && jobs[0].settings.seed == 10 && jobs[0].settings.sampler == "euler")
        #expect(jobs[1].settings.sampler == "ddim" && jobs[1].settings.seed == 10, "the last field varies fastest")
        #expect(jobs[2].settings.seed == 11)
        #expect(jobs[6].settings.prompt == "a hare")
        #expect(jobs.allSatisfy { $0.settings.steps == 3 || $0.line == 4 })
        #expect(jobs[0].axes.map(\.field) == ["prompt", "seed", "sampler"])
        #expect(jobs[0].line == 3 && jobs[12].line == 4)
        #expect(jobs[12].id.hasPrefix("job-") && jobs[12].settings.cfgScale == 6.5 && jobs[12].axes.isEmpty)
    }

    @Test func idsWithoutAnIDAreStableAndDifferPerSettings() throws {
        let first = try Self.parse(#"{"prompt": "a cat", "seed": 3, "steps": 20}"#)
        let reordered = try Self.parse(#"{"steps": 20, "seed": 3, "prompt": "a cat"}"#)
        let other = try Self.parse(#"{"prompt": "a cat", "seed": 4, "steps": 20}"#)
        #expect(first[0].id == reordered[0].id)
        #expect(first[0].id != other[0].id)
        let expanded = try Self.parse(#"{"prompt": "a cat", "seed": [3, 4], "steps": 20}"#)
        #expect(expanded.map(\.id) == [first[0].id, other[0].id], "an expanded job is the same job as written alone")
    }

    @Test func seedsLeftOutComeFromTheID() throws {
        let jobs = try Self.parse(#"{"id": "a", "prompt": "x"}"# + "\n" + #"{"id": "b", "prompt": "x"}"#)
        #expect(jobs[0].seed != jobs[1].seed)
        #expect(jobs[0].seed == (try Self.parse(#"{"id": "a", "prompt": "y"}"#))[0].seed)
        #expect(jobs[0].seed < 1 << 32)
    }

    @Test func plainTextIsOnePromptPerLine() throws {
        let jobs = try RenderManifest.parse("a red car\n\n# not a prompt\na blue boat\n", name: "p.txt", plainText: true)
        #expect(jobs.map(\.settings.prompt) == ["a red car", "a blue boat"])
        #expect(jobs.map(\.line) == [1, 4])
    }

    @Test(arguments: [
        (#"{"prompt": "x", "cfg": 7}"#, "line 1: field 'cfg': unknown field"),
        (#"{"prompt": "x", "steps": "20"}"#, "field 'steps': expected a whole number in 1...10000, got \"20\""),
        (#"{"prompt": "x", "steps": 2.5}"#, "field 'steps': expected a whole number"),
        (#"{"prompt": "x", "steps": 0}"#, "field 'steps'"),
        (#"{"prompt": 7}"#, "field 'prompt': expected a string, got 7"),
        (#"{"prompt": "x", "seed": -1}"#, "field 'seed': expected a whole number from 0"),
        (#"{"prompt": "x", "seed": {"range": [5, 1]}}"#, "runs backwards"),
        (#"{"prompt": "x", "seed": {"range": [0, 999999999]}}"#, "more than 100000 seeds"),
        (#"{"prompt": "x", "cfg_scale": true}"#, "field 'cfg_scale': expected a number, got true"),
        (#"{"prompt": []}"#, "an empty list"),
        (#"{"prompt": "x", "mask": "m.png"}"#, "field 'mask': a mask needs an init_image"),
        (#"{"id": "../x", "prompt": "x"}"#, "field 'id': '../x' is not a file name"),
        (#"["prompt"]"#, "a job must be a JSON object"),
        (#"{"prompt": "x""#, "line 1: not valid JSON"),
        (#"{"id": "a", "prompt": "x"}"# + "\n" + #"{"id": "a", "prompt": "y"}"#, "line 2: field 'id': job 'a' is also made by line 1"),
    ])
    func problemsNameTheLineAndField(_ text: String, _ message: String) {
        do {
            _ = try Self.parse(text)
            Issue.record("accepted: \(text)")
        } catch {
            #expect("\(error)".contains(message), "\(error)")
            #expect("\(error)".hasPrefix("m.jsonl"), "\(error)")
        }
    }

    @Test func shardsDependOnlyOnTheID() throws {
        let jobs = try Self.parse((0..<200).map { #"{"id": "j\#($0)", "prompt": "x"}"# }.joined(separator: "\n"))
        let shards = (0..<4).map { Shard(index: $0, count: 4) }
        let owners = jobs.map { job in shards.filter { $0.contains(job) }.map(\.index) }
        #expect(owners.allSatisfy { $0.count == 1 }, "every job in exactly one shard")
        #expect(Set(owners.map { $0[0] }).count == 4 && owners.filter { $0 == [0] }.count > 25, "spread over the shards")
        let reversed = try Self.parse((0..<200).reversed().map { #"{"id": "j\#($0)", "prompt": "y", "steps": 3}"# }.joined(separator: "\n"))
        for job in reversed {
            let index = Int(job.id.dropFirst())!
            #expect(shards[owners[index][0]].contains(job), "\(job.id): the shard follows the id alone")
        }
    }

    @Test func shardComesFromOptionsSlurmOrKubernetes() throws {
        #expect(try Shard.resolve(shard: "2/4", shards: nil, environment: [:]) == Shard(index: 2, count: 4))
        #expect(try Shard.resolve(shard: nil, shards: nil, environment: [:]) == .whole)
        let slurm = ["SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_TASK_MIN": "5", "SLURM_ARRAY_TASK_COUNT": "4"]
        #expect(try Shard.resolve(shard: nil, shards: nil, environment: slurm) == Shard(index: 2, count: 4))
        #expect(try Shard.resolve(shard: nil, shards: 3, environment: ["JOB_COMPLETION_INDEX": "1"]) == Shard(index: 1, count: 3))
        for (shard, shards, environment, message) in [
            ("4/4", nil, [:], "0 <= I < N"), ("1/2", 3, [:], "disagree"), (nil, nil, ["JOB_COMPLETION_INDEX": "0"], "--shards"),
            (nil, 2, ["JOB_COMPLETION_INDEX": "5"], "outside"), (nil, 4, [:], "without a shard"), (nil, 3, slurm, "4 tasks"),
        ] as [(String?, Int?, [String: String], String)] {
            #expect { try Shard.resolve(shard: shard, shards: shards, environment: environment) } throws: { "\($0)".contains(message) }
        }
    }

    @Test func sbatchScriptRunsEveryShardAndRequeues() {
        let script = SlurmScript.text(kiln: "/opt/kiln", arguments: ["/data/m.jsonl", "--out", "/data/out dir"], shards: 8)
        #expect(script.hasPrefix("#!/bin/bash\n"))
        for line in ["#SBATCH --array=0-7", "#SBATCH --requeue", "%A_%a.out", "RequeueExit=75",
                     "exec /opt/kiln render /data/m.jsonl --out '/data/out dir' --shards 8"] {
            #expect(script.contains(line), "\(line)")
        }
    }
}
