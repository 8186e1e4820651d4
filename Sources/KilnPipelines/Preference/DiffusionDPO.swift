import Foundation

/// The Diffusion-DPO objective on one preference pair (Wallace et al., 2023,
/// https://arxiv.org/abs/2311.12908, eq. 14) as diffusers' training scripts log it, from the
/// tuned and reference losses on the winner (w) and the loser (l) under one draw:
///
///     model_diff = model_loss_w - model_loss_l,   ref_diff = ref_loss_w - ref_loss_l
///     sd:   inside_term = beta * (ref_diff - model_diff)          (train_diffusion_dpo.py, beta 2500)
///     sdxl: inside_term = -0.5 * beta * (model_diff - ref_diff)   (train_diffusion_dpo_sdxl.py, beta 5000)
///     loss = -log(sigmoid(inside_term)),  implicit_acc = 1 if inside_term > 0, 0.5 if = 0, else 0
///
/// A loss is how badly a model denoises an image, so a positive inside term says the tuned model
/// lowered its loss on the winner, relative to the reference, by more than on the loser: it
/// prefers the winner more than its reference does.
public enum PreferenceConvention: String, Sendable, CaseIterable, Codable {
    case sd
    case sdxl

    /// The script's default `--beta_dpo`.
    public var defaultBeta: Double {
        switch self {
        case .sd: 2500
        case .sdxl: 5000
        }
    }

    /// What multiplies `ref_diff - model_diff`: beta, or half of it in the SDXL script.
    public func scale(beta: Double) -> Double {
        switch self {
        case .sd: beta
        case .sdxl: 0.5 * beta
        }
    }

    /// The inside term of one pair under one draw.
    public func insideTerm(winner: PreferenceLosses, loser: PreferenceLosses, beta: Double) -> Double {
        let modelDifference = winner.model - loser.model
        let referenceDifference = winner.reference - loser.reference
        switch self {
        case .sd: return beta * (referenceDifference - modelDifference)
        case .sdxl: return -0.5 * beta * (modelDifference - referenceDifference)
        }
    }

    /// One image's implicit reward, `scale * (ref_loss - model_loss)`: a pair's inside term is
    /// the winner's reward less the loser's (up to rounding).
    public func implicitReward(_ losses: PreferenceLosses, beta: Double) -> Double {
        scale(beta: beta) * (losses.reference - losses.model)
    }
}

/// The statistics of the objective, each as the scripts compute it per batch element.
public enum DiffusionDPO {
    /// `-log(sigmoid(x))` = softplus(-x), without overflow for large |x|.
    public static func loss(insideTerm x: Double) -> Double {
        x >= 0 ? Foundation.log1p(Foundation.exp(-x)) : -x + Foundation.log1p(Foundation.exp(x))
    }

    /// 1 for a positive inside term, 0.5 for zero, 0 for a negative one.
    public static func implicitAccuracy(insideTerm x: Double) -> Double {
        x > 0 ? 1 : (x == 0 ? 0.5 : 0)
    }

    /// The Wilson score interval (95 %, z = 1.959964) of a proportion `proportion` over `count`
    /// trials: `[lo, hi]` within [0, 1], `[0, 1]` for no trials. Used for the implicit accuracy
    /// over pairs (a pair's share of winning draws counting as its outcome).
    public static func wilsonInterval(proportion: Double, count: Int) -> [Double] {
        guard count > 0 else { return [0, 1] }
        let z = 1.959963984540054, n = Double(count)
        let zz = z * z
        let center = (proportion + zz / (2 * n)) / (1 + zz / n)
        let half = z / (1 + zz / n) * ((proportion * (1 - proportion) / n + zz / (4 * n * n)).squareRoot())
        return [max(0, center - half), min(1, center + half)]
    }
}

/// One draw of one pair, as `--json` reports it.
public struct PreferenceDrawScore: Sendable, Equatable, Codable {
    public var timestep: Int64
    public var winner: PreferenceLosses
    public var loser: PreferenceLosses
    public var insideTerm: Double
    public var loss: Double
    public var implicitAccuracy: Double

    public init(timestep: Int64, winner: PreferenceLosses, loser: PreferenceLosses, convention: PreferenceConvention, beta: Double) {
        self.timestep = timestep
        self.winner = winner
        self.loser = loser
        insideTerm = convention.insideTerm(winner: winner, loser: loser, beta: beta)
        loss = DiffusionDPO.loss(insideTerm: insideTerm)
        implicitAccuracy = DiffusionDPO.implicitAccuracy(insideTerm: insideTerm)
    }

    enum CodingKeys: String, CodingKey {
        case timestep = "t"
        case modelLossWinner = "model_loss_w"
        case modelLossLoser = "model_loss_l"
        case referenceLossWinner = "ref_loss_w"
        case referenceLossLoser = "ref_loss_l"
        case insideTerm = "inside_term"
        case loss
        case implicitAccuracy = "implicit_acc"
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(timestep, forKey: .timestep)
        try container.encode(winner.model, forKey: .modelLossWinner)
        try container.encode(loser.model, forKey: .modelLossLoser)
        try container.encode(winner.reference, forKey: .referenceLossWinner)
        try container.encode(loser.reference, forKey: .referenceLossLoser)
        try container.encode(insideTerm, forKey: .insideTerm)
        try container.encode(loss, forKey: .loss)
        try container.encode(implicitAccuracy, forKey: .implicitAccuracy)
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        timestep = try container.decode(Int64.self, forKey: .timestep)
        winner = PreferenceLosses(
            model: try container.decode(Double.self, forKey: .modelLossWinner), reference: try container.decode(Double.self, forKey: .referenceLossWinner))
        loser = PreferenceLosses(
            model: try container.decode(Double.self, forKey: .modelLossLoser), reference: try container.decode(Double.self, forKey: .referenceLossLoser))
        insideTerm = try container.decode(Double.self, forKey: .insideTerm)
        loss = try container.decode(Double.self, forKey: .loss)
        implicitAccuracy = try container.decodeIfPresent(Double.self, forKey: .implicitAccuracy) ?? DiffusionDPO.implicitAccuracy(insideTerm: insideTerm)
    }
}

/// One pair's draws and their means.
public struct PreferencePairScore: Sendable, Equatable {
    public var prompt: String
    public var draws: [PreferenceDrawScore]

    public init(prompt: String, draws: [PreferenceDrawScore]) {
        self.prompt = prompt
        self.draws = draws
    }

    public var insideTerm: Double { Self.mean(draws.map(\.insideTerm)) }
    public var loss: Double { Self.mean(draws.map(\.loss)) }
    public var implicitAccuracy: Double { Self.mean(draws.map(\.implicitAccuracy)) }
    /// The mean of the tuned model's losses on both images (the scripts' `raw_model_loss`).
    public var modelLoss: Double { Self.mean(draws.flatMap { [$0.winner.model, $0.loser.model] }) }
    public var referenceLoss: Double { Self.mean(draws.flatMap { [$0.winner.reference, $0.loser.reference] }) }

    static func mean(_ values: [Double]) -> Double { values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count) }
}

/// The means over every pair (each pair weighs the same; every pair has the same draws).
public struct PreferenceSummary: Sendable, Equatable {
    public var pairs: Int
    public var draws: Int
    public var loss: Double
    public var implicitAccuracy: Double
    /// The Wilson 95 % interval of the implicit accuracy over the pairs.
    public var implicitAccuracyInterval: [Double]
    public var modelLoss: Double
    public var referenceLoss: Double
    public var insideTerm: Double

    public init(_ scores: [PreferencePairScore], draws: Int) {
        pairs = scores.count
        self.draws = draws
        loss = PreferencePairScore.mean(scores.map(\.loss))
        implicitAccuracy = PreferencePairScore.mean(scores.map(\.implicitAccuracy))
        implicitAccuracyInterval = DiffusionDPO.wilsonInterval(proportion: implicitAccuracy, count: scores.count)
        modelLoss = PreferencePairScore.mean(scores.map(\.modelLoss))
        referenceLoss = PreferencePairScore.mean(scores.map(\.referenceLoss))
        insideTerm = PreferencePairScore.mean(scores.map(\.insideTerm))
    }
}
