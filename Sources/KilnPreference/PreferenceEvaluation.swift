import Foundation
import Kiln

/// The settings of one scoring run, as `kiln preference score` and `rank` take them.
public struct PreferenceSettings: Sendable, Equatable {
    /// Draws (timestep and noise) per pair, or per image when ranking.
    public var draws: Int
    /// Seed of the one `torch.Generator("cpu")` every draw of the run comes from.
    public var seed: UInt64
    public var convention: PreferenceConvention
    public var beta: Double
    /// The side images are resized and cropped to (the model's native size by default).
    public var resolution: Int

    public init(draws: Int = 1, seed: UInt64 = 0, convention: PreferenceConvention = .sd, beta: Double? = nil, resolution: Int) {
        self.draws = draws
        self.seed = seed
        self.convention = convention
        self.beta = beta ?? convention.defaultBeta
        self.resolution = resolution
    }

    /// The most draws one run may ask per pair.
    public static let maximumDraws = 10_000

    /// Refuses draws outside 1...10000 and a beta that is not a finite positive number.
    public func validate() throws {
        if draws < 1 || draws > Self.maximumDraws { throw PipelineError.invalidRequest("draws \(draws): must be in 1...\(Self.maximumDraws)") }
        if !beta.isFinite || beta <= 0 { throw PipelineError.invalidRequest("beta \(beta): must be a positive number") }
    }
}

/// One image ranked by its implicit reward, the mean over the draws of
/// `scale * (ref_loss - model_loss)` (`PreferenceConvention.implicitReward`).
public struct RankedImage: Sendable, Equatable {
    /// One draw's timestep, losses and reward.
    public struct Draw: Sendable, Equatable {
        public var timestep: Int64
        public var losses: PreferenceLosses
        public var reward: Double
    }

    public var path: String
    public var reward: Double
    public var modelLoss: Double
    public var referenceLoss: Double
    public var draws: [Draw]
}

/// Runs the scorer over pairs or images in file order, drawing every timestep and noise from one
/// generator seeded once for the run, as the scripts draw within a training step.
public enum PreferenceEvaluation {
    /// Every pair's score, in file order. For each pair the `draws` draws come from the run's
    /// generator one after the other (timestep, then noise), shared by winner and loser.
    /// `progress(done, total)` is called after each pair; a failure names the pair's line.
    public static func score(
        _ pairs: [PreferencePair], scorer: PreferenceScorer, settings: PreferenceSettings, pairsFile: String,
        progress: (Int, Int) -> Void = { _, _ in }
    ) throws -> [PreferencePairScore] {
        try settings.validate()
        try scorer.checkResolution(settings.resolution)
        let generator = TorchGenerator(seed: settings.seed)
        let latentShape = scorer.latentShape(resolution: settings.resolution)
        var scores: [PreferencePairScore] = []
        for (index, pair) in pairs.enumerated() {
            let draws = PreferenceDraw.draw(settings.draws, trainTimesteps: scorer.trainTimestepCount, latentShape: latentShape, from: generator)
            let images = try [("winner", pair.winner), ("loser", pair.loser)].map { field, url in
                try loadImage(url, resolution: settings.resolution, file: pairsFile, line: pair.line, field: field)
            }
            let losses = try inPair(pair, file: pairsFile) { try scorer.losses(prompt: pair.prompt, images: images, draws: draws) }
            let drawScores = zip(draws, losses).map { draw, losses in
                PreferenceDrawScore(timestep: draw.timestep, winner: losses[0], loser: losses[1], convention: settings.convention, beta: settings.beta)
            }
            scores.append(PreferencePairScore(prompt: pair.prompt, draws: drawScores))
            progress(index + 1, pairs.count)
        }
        return scores
    }

    /// The images of `paths` (PNG files) for one prompt, best first by implicit reward; every
    /// image is scored under the same `draws` draws. Ties keep the given order.
    public static func rank(
        _ paths: [String], prompt: String, scorer: PreferenceScorer, settings: PreferenceSettings
    ) throws -> [RankedImage] {
        try settings.validate()
        try scorer.checkResolution(settings.resolution)
        let images = try paths.map { path in
            do {
                return try PreferenceImageFile.load(URL(fileURLWithPath: path), resolution: settings.resolution)
            } catch {
                throw PreferenceInputError(file: path, line: nil, field: nil, message: "\(error)")
            }
        }
        let generator = TorchGenerator(seed: settings.seed)
        let draws = PreferenceDraw.draw(
            settings.draws, trainTimesteps: scorer.trainTimestepCount, latentShape: scorer.latentShape(resolution: settings.resolution),
            from: generator)
        let losses = try scorer.losses(prompt: prompt, images: images, draws: draws)
        let ranked = paths.enumerated().map { index, path in
            let perDraw = zip(draws, losses).map { draw, losses in
                RankedImage.Draw(
                    timestep: draw.timestep, losses: losses[index], reward: settings.convention.implicitReward(losses[index], beta: settings.beta))
            }
            let count = Double(max(perDraw.count, 1))
            return RankedImage(
                path: path, reward: perDraw.reduce(0) { $0 + $1.reward } / count,
                modelLoss: perDraw.reduce(0) { $0 + $1.losses.model } / count,
                referenceLoss: perDraw.reduce(0) { $0 + $1.losses.reference } / count, draws: perDraw)
        }
        return ranked.enumerated().sorted { $0.element.reward != $1.element.reward ? $0.element.reward > $1.element.reward : $0.offset < $1.offset }
            .map(\.element)
    }

    /// A pair's image; a file that cannot be decoded after its header checked out is a failure
    /// while working, named by line and field.
    private static func loadImage(_ url: URL, resolution: Int, file: String, line: Int, field: String) throws -> PreferenceImage {
        do {
            return try PreferenceImageFile.load(url, resolution: resolution)
        } catch {
            throw PreferenceFailure.image(PreferenceInputError(file: file, line: line, field: field, message: "\(error)"))
        }
    }

    /// Runs `work` for `pair`, prefixing a pipeline failure with the pair's line.
    private static func inPair<Result>(_ pair: PreferencePair, file: String, _ work: () throws -> Result) throws -> Result {
        do {
            return try work()
        } catch let error as PipelineError {
            throw PreferenceFailure.pair(file: file, line: pair.line, error: error)
        }
    }
}

/// A failure while scoring (exit code 1 unless the pipeline calls it bad input), naming the pair.
public enum PreferenceFailure: Error, CustomStringConvertible {
    /// An image whose header was fine but whose data is not.
    case image(PreferenceInputError)
    case pair(file: String, line: Int, error: PipelineError)

    public var description: String {
        switch self {
        case .image(let error): "\(error)"
        case .pair(let file, let line, let error): "\(file): line \(line): \(error)"
        }
    }

    /// True when the pipeline found the request itself wrong (a size, the memory), before work.
    public var isBadInput: Bool {
        if case .pair(_, _, let error) = self { return error.isBadInput }
        return false
    }
}
