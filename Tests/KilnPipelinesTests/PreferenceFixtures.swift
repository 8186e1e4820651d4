import Foundation
import Kiln
import KilnPreference
import Testing

/// What Tests/Fixtures/generate_preference_fixtures.py recorded with diffusers and torch: per
/// family (sd1 epsilon, sd2 v-prediction at a non-native resolution, sdxl with the sdxl
/// convention) the pairs' per-draw timesteps, losses, inside terms, DPO losses and implicit
/// accuracies, and a rank case.
enum PreferenceFixtures {
    struct Draw: Decodable {
        let t: Int64
        let modelLossW: Double
        let modelLossL: Double
        let refLossW: Double
        let refLossL: Double
        let insideTerm: Double
        let loss: Double
        let implicitAcc: Double

        enum CodingKeys: String, CodingKey {
            case t, loss
            case modelLossW = "model_loss_w"
            case modelLossL = "model_loss_l"
            case refLossW = "ref_loss_w"
            case refLossL = "ref_loss_l"
            case insideTerm = "inside_term"
            case implicitAcc = "implicit_acc"
        }

        var losses: [Double] { [modelLossW, modelLossL, refLossW, refLossL] }
    }

    struct Pair: Decodable {
        let prompt: String
        let winner: String
        let loser: String
        let draws: [Draw]
        let insideTerm: Double
        let loss: Double
        let implicitAcc: Double

        enum CodingKeys: String, CodingKey {
            case prompt, winner, loser, draws, loss
            case insideTerm = "inside_term"
            case implicitAcc = "implicit_acc"
        }
    }

    struct Summary: Decodable {
        let pairs: Int
        let draws: Int
        let loss: Double
        let implicitAcc: Double
        let modelLoss: Double
        let refLoss: Double

        enum CodingKeys: String, CodingKey {
            case pairs, draws, loss
            case implicitAcc = "implicit_acc"
            case modelLoss = "model_loss"
            case refLoss = "ref_loss"
        }
    }

    struct Case: Decodable, CustomStringConvertible, Sendable {
        let family: String
        let draws: Int
        let seed: UInt64
        let convention: String
        let beta: Double
        let resolution: Int
        var description: String { family }
    }

    struct CaseRecord: Decodable {
        let family: String
        let pairs: [Pair]
        let summary: Summary
    }

    struct RankDraw: Decodable {
        let t: Int64
        let modelLoss: Double
        let refLoss: Double
        let reward: Double
        enum CodingKeys: String, CodingKey {
            case t, reward
            case modelLoss = "model_loss"
            case refLoss = "ref_loss"
        }
    }

    struct RankImage: Decodable {
        let image: String
        let reward: Double
        let draws: [RankDraw]
    }

    struct Rank: Decodable {
        let family: String
        let prompt: String
        let images: [RankImage]
        let order: [String]
        let draws: Int
        let seed: UInt64
        let beta: Double
        let resolution: Int
    }

    struct Records: Decodable {
        let cases: [Case]
        let rank: Rank
    }

    private struct RecordFile: Decodable {
        let cases: [CaseRecord]
    }

    static let folder = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("preference")

    static let records: Records? = {
        guard let data = try? Data(contentsOf: folder.appendingPathComponent("records.json")) else { return nil }
        return try? JSONDecoder().decode(Records.self, from: data)
    }()

    static var cases: [Case] { records?.cases ?? [] }

    static func record(_ family: String) throws -> CaseRecord {
        let data = try Data(contentsOf: folder.appendingPathComponent("records.json"))
        let file = try JSONDecoder().decode(RecordFile.self, from: data)
        return try #require(file.cases.first { $0.family == family })
    }

    static func pairsFile(_ family: String) -> URL { folder.appendingPathComponent("\(family)/pairs.jsonl") }
    static func tunedModel(_ family: String) -> URL { folder.appendingPathComponent("\(family)/tuned") }

    static func settings(_ testCase: Case) throws -> PreferenceSettings {
        PreferenceSettings(
            draws: testCase.draws, seed: testCase.seed, convention: try #require(PreferenceConvention(rawValue: testCase.convention)),
            beta: testCase.beta, resolution: testCase.resolution)
    }

    /// The largest relative error of Kiln's losses against torch's, over every draw of every pair.
    static func lossError(_ scores: [PreferencePairScore], _ record: CaseRecord) -> Double {
        var worst = 0.0
        for (score, pair) in zip(scores, record.pairs) {
            for (draw, expected) in zip(score.draws, pair.draws) {
                let actual = [draw.winner.model, draw.loser.model, draw.winner.reference, draw.loser.reference]
                for (value, reference) in zip(actual, expected.losses) {
                    worst = max(worst, abs(value - reference) / max(abs(reference), 1e-12))
                }
            }
        }
        return worst
    }

    /// The inside term's error relative to the scale of what it is computed from: the
    /// convention's scale times the largest of the four losses (the inside term is a difference
    /// of differences, so its own relative error grows as it nears zero).
    static func insideTermError(_ scores: [PreferencePairScore], _ record: CaseRecord, scale: Double) -> Double {
        var worst = 0.0
        for (score, pair) in zip(scores, record.pairs) {
            for (draw, expected) in zip(score.draws, pair.draws) {
                let magnitude = scale * (expected.losses.map(abs).max() ?? 1)
                worst = max(worst, abs(draw.insideTerm - expected.insideTerm) / magnitude)
            }
        }
        return worst
    }

    /// The DPO loss's error on the same scale as the inside term's: its slope, sigmoid(-x), is
    /// below 1, so it is never off by more than the inside term it is computed from.
    static func dpoLossError(_ scores: [PreferencePairScore], _ record: CaseRecord, scale: Double) -> Double {
        zip(scores, record.pairs).flatMap { score, pair in
            zip(score.draws, pair.draws).map { abs($0.loss - $1.loss) / (scale * ($1.losses.map(abs).max() ?? 1)) }
        }.max() ?? 0
    }

    /// Checks everything recorded for `record` against `scores`: timesteps exactly, losses within
    /// `tolerance` relative, inside terms and DPO losses within `tolerance` of their scale, and the
    /// implicit accuracies (per draw, per pair, overall) exactly.
    static func expectMatch(_ scores: [PreferencePairScore], _ record: CaseRecord, settings: PreferenceSettings, tolerance: Double, label: String) {
        #expect(scores.count == record.pairs.count, "\(label): pair count")
        for (index, (score, pair)) in zip(scores, record.pairs).enumerated() {
            #expect(score.prompt == pair.prompt)
            #expect(score.draws.map(\.timestep) == pair.draws.map(\.t), "\(label) pair \(index): timesteps")
            #expect(score.draws.map(\.implicitAccuracy) == pair.draws.map(\.implicitAcc), "\(label) pair \(index): implicit accuracy per draw")
            #expect(score.implicitAccuracy == pair.implicitAcc, "\(label) pair \(index): implicit accuracy")
        }
        let summary = PreferenceSummary(scores, draws: settings.draws)
        #expect(summary.implicitAccuracy == record.summary.implicitAcc, "\(label): overall implicit accuracy")
        let losses = lossError(scores, record)
        let inside = insideTermError(scores, record, scale: settings.convention.scale(beta: settings.beta))
        let dpo = dpoLossError(scores, record, scale: settings.convention.scale(beta: settings.beta))
        print("\(label): losses \(losses) relative, inside terms \(inside) and DPO losses \(dpo) of their scale")
        #expect(losses <= tolerance, "\(label): losses off by \(losses) relative")
        #expect(inside <= tolerance, "\(label): inside terms off by \(inside) of their scale")
        #expect(dpo <= tolerance, "\(label): DPO losses off by \(dpo) of their scale")
        #expect(abs(summary.modelLoss - record.summary.modelLoss) <= tolerance * record.summary.modelLoss)
        #expect(abs(summary.referenceLoss - record.summary.refLoss) <= tolerance * record.summary.refLoss)
    }
}
