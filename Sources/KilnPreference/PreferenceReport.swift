import Foundation
import Kiln

/// `kiln preference score --json`: one object, `{"pairs": [...], "summary": {...}}`, the names of
/// diffusers' training logs (`model_loss_w`, `ref_loss_l`, `inside_term`, `implicit_acc`, ...).
public struct PreferenceScoreReport: Encodable, Sendable {
    public struct Pair: Encodable, Sendable {
        public let line: Int
        public let prompt: String
        public let winner: String
        public let loser: String
        public let draws: [PreferenceDrawScore]
        public let insideTerm: Double
        public let loss: Double
        public let implicitAccuracy: Double

        enum CodingKeys: String, CodingKey {
            case line, prompt, winner, loser, draws, loss
            case insideTerm = "inside_term"
            case implicitAccuracy = "implicit_acc"
        }
    }

    public struct Summary: Encodable, Sendable {
        public let pairs: Int
        public let draws: Int
        public let loss: Double
        public let implicitAccuracy: Double
        public let implicitAccuracyInterval: [Double]
        public let modelLoss: Double
        public let referenceLoss: Double
        public let insideTerm: Double
        public let seconds: Double
        public let pairsPerMinute: Double
        public let convention: String
        public let beta: Double
        public let seed: UInt64
        public let resolution: Int
        public let device: String

        enum CodingKeys: String, CodingKey {
            case pairs, draws, loss, seconds, convention, beta, seed, resolution, device
            case implicitAccuracy = "implicit_acc"
            case implicitAccuracyInterval = "implicit_acc_ci95"
            case modelLoss = "model_loss"
            case referenceLoss = "ref_loss"
            case insideTerm = "inside_term"
            case pairsPerMinute = "pairs_per_minute"
        }
    }

    public let pairs: [Pair]
    public let summary: Summary

    public init(pairs: [PreferencePair], scores: [PreferencePairScore], settings: PreferenceSettings, seconds: Double, device: String) {
        self.pairs = zip(pairs, scores).map { pair, score in
            Pair(line: pair.line, prompt: score.prompt, winner: pair.winnerPath, loser: pair.loserPath, draws: score.draws,
                 insideTerm: score.insideTerm, loss: score.loss, implicitAccuracy: score.implicitAccuracy)
        }
        let totals = PreferenceSummary(scores, draws: settings.draws)
        summary = Summary(
            pairs: totals.pairs, draws: totals.draws, loss: totals.loss, implicitAccuracy: totals.implicitAccuracy,
            implicitAccuracyInterval: totals.implicitAccuracyInterval, modelLoss: totals.modelLoss, referenceLoss: totals.referenceLoss,
            insideTerm: totals.insideTerm, seconds: seconds, pairsPerMinute: seconds > 0 ? Double(totals.pairs) * 60 / seconds : 0,
            convention: settings.convention.rawValue, beta: settings.beta, seed: settings.seed, resolution: settings.resolution, device: device)
    }

    /// The readable table: one row per pair, then the summary.
    public var table: String {
        var lines = [[padded("line", 5), padded("accuracy", 8), padded("inside term", 12), padded("loss", 9), "prompt"].joined(separator: "  ")]
        for pair in pairs {
            lines.append(String(format: "%5d  %8.3f  %+12.4g  %9.4g  %@", pair.line, pair.implicitAccuracy, pair.insideTerm, pair.loss,
                                Self.shortened(pair.prompt)))
        }
        let s = summary
        lines.append("")
        lines.append(String(format: "%d pairs x %d draw%@ (%@, beta %g, seed %llu, %dx%d)", s.pairs, s.draws, s.draws == 1 ? "" : "s",
                            s.convention, s.beta, s.seed, s.resolution, s.resolution))
        lines.append(String(format: "implicit accuracy  %.4f  (95%% CI %.4f-%.4f)", s.implicitAccuracy, s.implicitAccuracyInterval[0],
                            s.implicitAccuracyInterval[1]))
        lines.append(String(format: "DPO loss           %.6g  (ln 2 = 0.693 is no preference)", s.loss))
        lines.append(String(format: "mean inside term   %+.6g", s.insideTerm))
        lines.append(String(format: "model loss         %.6g", s.modelLoss))
        lines.append(String(format: "reference loss     %.6g", s.referenceLoss))
        lines.append(String(format: "%.1f s, %.1f pairs/min on %@", s.seconds, s.pairsPerMinute, s.device))
        return lines.joined(separator: "\n")
    }

    static func shortened(_ text: String, to length: Int = 60) -> String {
        let flat = text.replacingOccurrences(of: "\n", with: " ")
        return flat.count <= length ? flat : String(flat.prefix(length - 1)) + "…"
    }
}

/// `text` right-aligned in `width` columns, as a table header over `%Nd` columns.
func padded(_ text: String, _ width: Int) -> String {
    String(repeating: " ", count: max(0, width - text.count)) + text
}

/// `kiln preference rank --json`: the images best first.
public struct PreferenceRankReport: Encodable, Sendable {
    public struct Image: Encodable, Sendable {
        public let rank: Int
        public let image: String
        public let reward: Double
        public let modelLoss: Double
        public let referenceLoss: Double
        public let draws: [Draw]

        enum CodingKeys: String, CodingKey {
            case rank, image, reward, draws
            case modelLoss = "model_loss"
            case referenceLoss = "ref_loss"
        }
    }

    public struct Draw: Encodable, Sendable {
        public let timestep: Int64
        public let modelLoss: Double
        public let referenceLoss: Double
        public let reward: Double

        enum CodingKeys: String, CodingKey {
            case timestep = "t"
            case modelLoss = "model_loss"
            case referenceLoss = "ref_loss"
            case reward
        }
    }

    public let prompt: String
    public let images: [Image]
    public let draws: Int
    public let convention: String
    public let beta: Double
    public let seed: UInt64
    public let resolution: Int
    public let seconds: Double

    public init(prompt: String, ranked: [RankedImage], settings: PreferenceSettings, seconds: Double) {
        self.prompt = prompt
        images = ranked.enumerated().map { index, image in
            Image(rank: index + 1, image: image.path, reward: image.reward, modelLoss: image.modelLoss, referenceLoss: image.referenceLoss,
                  draws: image.draws.map { Draw(timestep: $0.timestep, modelLoss: $0.losses.model, referenceLoss: $0.losses.reference, reward: $0.reward) })
        }
        draws = settings.draws
        convention = settings.convention.rawValue
        beta = settings.beta
        seed = settings.seed
        resolution = settings.resolution
        self.seconds = seconds
    }

    /// The readable table, best first.
    public var table: String {
        var lines = [[padded("rank", 4), padded("reward", 12), padded("model loss", 10), padded("ref loss", 10), "image"].joined(separator: "  ")]
        for image in images {
            lines.append(String(format: "%4d  %+12.5g  %10.5g  %10.5g  %@", image.rank, image.reward, image.modelLoss, image.referenceLoss, image.image))
        }
        lines.append("")
        lines.append(String(format: "%d draw%@ (%@, beta %g, seed %llu, %dx%d), %.1f s", draws, draws == 1 ? "" : "s", convention, beta, seed,
                            resolution, resolution, seconds))
        return lines.joined(separator: "\n")
    }
}
