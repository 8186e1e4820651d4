import ArgumentParser
import Foundation
import Kiln
import KilnPreference

/// `kiln preference`: a Diffusion-DPO-tuned model against its reference, on preference pairs
/// (`score`) or on images of one prompt (`rank`).
struct PreferenceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "preference",
        abstract: "Score a Diffusion-DPO-tuned model against its reference on preference pairs, or rank images by implicit reward.",
        subcommands: [PreferenceScoreCommand.self, PreferenceRankCommand.self])
}

/// The options `score` and `rank` share: the two models, the draws, the objective's convention.
struct PreferenceOptions: ParsableArguments {
    @Option(help: "The tuned model: a diffusers folder, a folder with unet/, a U-Net folder, or a .safetensors checkpoint (its U-Net is used).")
    var model: String
    @Option(help: "The reference (base) model: a diffusers Stable Diffusion 1.x/2.x/XL folder, or a single file with --config. Its text encoders, VAE and scheduler serve both models.")
    var reference: String
    @Option(help: "For single-file checkpoints: a diffusers folder of the same family supplying configs, tokenizers and scheduler.")
    var config: String?
    @Option(help: "A LoRA file tuning the --model base (--model BASE --lora TUNED_LORA.safetensors).")
    var lora: String?
    @Option(help: "Draws (timestep and noise) per pair, or per image for rank.")
    var draws = 1
    @Option(help: "Seed of the one torch.Generator(\"cpu\").manual_seed(S) that every draw of the run comes from.")
    var seed: UInt64 = 0
    @Option(help: "DPO beta (default 2500 for --convention sd, 5000 for sdxl, as the diffusers scripts).")
    var beta: Double?
    @Option(help: "sd: inside_term = beta * (ref_diff - model_diff) (train_diffusion_dpo.py); sdxl: -0.5 * beta * (model_diff - ref_diff) (train_diffusion_dpo_sdxl.py).")
    var convention = "sd"
    @Option(help: "Images are resized on their shorter side and center-cropped to R x R (default: the model's native size).")
    var resolution: Int?
    @Option(help: "The most images one U-Net call takes (default: a pair's winner and loser under every draw, within the device's activation budget).")
    var batchSize: Int?
    @Option(help: "vulkan or cpu.")
    var backend = "vulkan"
    @OptionGroup var deviceOptions: DeviceOptions
    @Option(help: "Weights and activations on the device: f32 (default: the objective subtracts losses that differ by ~1e-4, where f16 storage is noise) or f16 (half the memory).")
    var dtype = "f32"
    @Flag(help: "No progress on stderr.")
    var quiet = false
    @Flag(help: "Print one JSON object on stdout instead of the table.")
    var json = false

    /// Everything that can be checked before a model is opened.
    func checked() throws -> (convention: PreferenceConvention, dtype: DType) {
        if let lora, !FileManager.default.fileExists(atPath: lora) { throw CommandFailure.badInput("--lora \(lora): no such file") }
        guard let convention = PreferenceConvention(rawValue: self.convention) else {
            throw CommandFailure.badInput("--convention must be sd or sdxl, got '\(self.convention)'")
        }
        guard BackendChoice.kinds.contains(backend) else {
            throw CommandFailure.badInput("--backend must be \(BackendChoice.kinds.joined(separator: " or ")), got '\(backend)'")
        }
        guard let storage = DType.allCases.first(where: { $0.shortName == dtype }), storage == .float16 || storage == .float32 else {
            throw CommandFailure.badInput("--dtype must be f16 or f32, got '\(dtype)'")
        }
        if draws < 1 || draws > PreferenceSettings.maximumDraws {
            throw CommandFailure.badInput("--draws \(draws): must be in 1...\(PreferenceSettings.maximumDraws)")
        }
        if let beta, !beta.isFinite || beta <= 0 { throw CommandFailure.badInput("--beta \(beta): must be a positive number") }
        if let batchSize, batchSize < 1 { throw CommandFailure.badInput("--batch-size \(batchSize): must be at least 1") }
        if let resolution, resolution <= 0 { throw CommandFailure.badInput("--resolution \(resolution): must be positive") }
        return (convention, storage)
    }

    /// Opens the device and both models; bad input (a missing folder, an incompatible U-Net,
    /// models that cannot be resident together) exits 2.
    func open(dtype: DType) throws -> (scorer: PreferenceScorer, device: BackendChoice) {
        let device = try CommandFailure.mapping { try BackendChoice.open(backend, device: deviceOptions.device) }
        let source = Pipelines.Source(url: URL(fileURLWithPath: reference), configFolder: config.map(URL.init(fileURLWithPath:)))
        let scorer = try CommandFailure.mapping {
            try PreferenceScorer(reference: source, tuned: URL(fileURLWithPath: model), tunedLoRA: lora.map { LoRARequest(url: URL(fileURLWithPath: $0)) },
                                 backend: device.backend,
                                 dtype: device.storage(dtype), maximumBatch: batchSize)
        }
        return (scorer, device)
    }

    func settings(for scorer: PreferenceScorer, convention: PreferenceConvention) throws -> PreferenceSettings {
        let settings = PreferenceSettings(draws: draws, seed: seed, convention: convention, beta: beta, resolution: resolution ?? scorer.nativeResolution)
        try CommandFailure.mapping {
            try settings.validate()
            try scorer.checkResolution(settings.resolution)
        }
        return settings
    }
}

/// Turns the preference layer's errors into exit codes: bad input 2, failures while working 1.
enum PreferenceErrors {
    static func run(_ command: String, _ work: () throws -> Void) throws {
        do {
            try work()
        } catch let error as CommandFailure {
            printError("kiln preference \(command): \(error.message)")
            throw ExitCode(error.exitCode)
        } catch let error as PreferenceInputError {
            printError("kiln preference \(command): \(error)")
            throw ExitCode(2)
        } catch let error as PreferenceFailure {
            printError("kiln preference \(command): \(error)")
            throw ExitCode(error.isBadInput ? 2 : 1)
        } catch let error as PipelineError {
            printError("kiln preference \(command): \(error)")
            throw ExitCode(error.isBadInput ? 2 : 1)
        } catch let error as ExitCode {
            throw error
        } catch {
            printError("kiln preference \(command): \(error)")
            throw ExitCode.failure
        }
    }
}

struct PreferenceScoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "score",
        abstract: "Implicit accuracy, DPO loss and inside terms of the tuned model against its reference on PAIRS.jsonl.",
        discussion: """
            PAIRS.jsonl holds one pair a line: {"prompt": "...", "winner": "a.png", "loser": "b.png"}, paths relative to the file. \
            Per pair and draw, both images are encoded by the reference's VAE, noised with one draw (timestep, noise) and denoised by \
            both models; a positive inside term means the tuned model prefers the winner more than its reference does.
            """)

    @OptionGroup var options: PreferenceOptions
    @Argument(help: "The pairs file (JSON Lines).")
    var pairs: String

    func run() throws {
        try PreferenceErrors.run("score") {
            let (convention, dtype) = try options.checked()
            let pairsURL = URL(fileURLWithPath: pairs)
            let loaded = try PreferencePairsFile.load(pairsURL)
            let (scorer, device) = try options.open(dtype: dtype)
            let settings = try options.settings(for: scorer, convention: convention)
            let start = Date()
            let progress = PreferenceProgress(total: loaded.count, enabled: !options.quiet, start: start)
            let scores = try PreferenceEvaluation.score(loaded, scorer: scorer, settings: settings, pairsFile: pairs, progress: progress.report)
            progress.finish()
            let report = PreferenceScoreReport(
                pairs: loaded, scores: scores, settings: settings, seconds: Date().timeIntervalSince(start), device: device.deviceName)
            if options.json {
                try printJSON(report)
            } else {
                print(report.table)
            }
        }
    }
}

struct PreferenceRankCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rank",
        abstract: "Rank images of one prompt by the tuned model's implicit reward, beta * (ref_loss - model_loss), best first.",
        discussion: "Every image is scored under the same draws; with --convention sdxl the reward is 0.5 * beta * (ref_loss - model_loss).")

    @OptionGroup var options: PreferenceOptions
    @Option(help: "The prompt the images were made for.")
    var prompt: String
    @Argument(help: "PNG images.")
    var images: [String]

    func run() throws {
        try PreferenceErrors.run("rank") {
            let (convention, dtype) = try options.checked()
            if images.isEmpty { throw CommandFailure.badInput("give at least one image") }
            for path in images {
                do {
                    try PreferenceImageFile.check(URL(fileURLWithPath: path))
                } catch {
                    throw CommandFailure.badInput("\(error)")
                }
            }
            let (scorer, _) = try options.open(dtype: dtype)
            let settings = try options.settings(for: scorer, convention: convention)
            let start = Date()
            let ranked = try PreferenceEvaluation.rank(images, prompt: prompt, scorer: scorer, settings: settings)
            let report = PreferenceRankReport(prompt: prompt, ranked: ranked, settings: settings, seconds: Date().timeIntervalSince(start))
            if options.json {
                try printJSON(report)
            } else {
                print(report.table)
            }
        }
    }
}

/// Pairs done of all, pairs per minute and the time left, on stderr: one line redrawn on a
/// terminal, one line per pair in a log.
final class PreferenceProgress {
    private let total: Int
    private let enabled: Bool
    private let start: Date
    private let interactive = isatty(STDERR_FILENO) != 0
    private var drawn = false

    init(total: Int, enabled: Bool, start: Date) {
        self.total = total
        self.enabled = enabled
        self.start = start
    }

    func report(done: Int, total: Int) {
        guard enabled else { return }
        let seconds = Date().timeIntervalSince(start)
        let perMinute = seconds > 0 ? Double(done) * 60 / seconds : 0
        let left = done > 0 ? seconds / Double(done) * Double(total - done) : 0
        let text = String(format: "pair %d/%d, %.1f pairs/min, ETA %@", done, total, perMinute, ProgressBar.clock(left))
        if interactive {
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + text + (done == total ? "\n" : "")).utf8))
            drawn = done != total
        } else {
            FileHandle.standardError.write(Data((text + "\n").utf8))
        }
    }

    func finish() {
        if drawn { FileHandle.standardError.write(Data("\n".utf8)) }
        drawn = false
    }
}
