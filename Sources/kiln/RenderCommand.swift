import ArgumentParser
import Foundation
import Kiln
import KilnRender

/// `kiln render`: a manifest of jobs into a folder of PNGs, for render farms — resumable from a
/// ledger, sharded over Slurm array tasks or Kubernetes Indexed Jobs, stopped cleanly by SIGTERM.
/// Exit codes: 0 every job of the shard done, 1 some failed, 2 bad manifest or options, 75
/// interrupted (requeue me).
struct RenderCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "render",
        abstract: "Render a manifest of jobs (JSON Lines, or one prompt per line) into a folder of PNGs, resumably and in shards.",
        subcommands: [RenderRunCommand.self, RenderStatusCommand.self],
        defaultSubcommand: RenderRunCommand.self)

    /// Exit code of an interrupted shard: Slurm's `RequeueExit=75`, a Kubernetes podFailurePolicy.
    static let interruptedExitCode: Int32 = 75
}

/// Options naming the manifest and the output folder, shared by the run and `status`.
struct RenderFiles: ParsableArguments {
    @Argument(help: "The manifest: JSON Lines (one job per line) or a text file with one prompt per line.")
    var manifest: String
    @Option(help: "The output folder (made if missing): DIR/{id}.png and the ledgers DIR/ledger-{I}-of-{N}.jsonl.")
    var out: String

    func load() throws -> RenderManifest {
        do {
            return try RenderManifest.load(URL(fileURLWithPath: manifest))
        } catch let error as ManifestError {
            throw CommandFailure.badInput("\(error)")
        }
    }
}

struct RenderRunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Render the manifest's jobs (the default).")

    @OptionGroup var files: RenderFiles
    @Option(help: "The model of jobs that name none: a diffusers folder or a single .safetensors file (default: Kiln's built-in model).")
    var model: String?
    @Option(help: "For single-file models: a diffusers folder of the same family with their configs.")
    var config: String?
    @Option(help: "This process's shard, I/N (default: from SLURM_ARRAY_TASK_ID, or JOB_COMPLETION_INDEX with --shards).")
    var shard: String?
    @Option(help: "How many shards the manifest is split into (with JOB_COMPLETION_INDEX, or to check the Slurm array's count).")
    var shards: Int?
    @Option(help: "Further attempts for a job that failed while working (bad input is never retried).")
    var retries = 1
    @Option(help: "vulkan or cpu.")
    var backend = "vulkan"
    @Option(help: "Devices, one worker each with its own resident model: indices, UUIDs or name substrings, comma-separated (default: the default device).")
    var devices: String?
    @Option(help: "Weights and activations on the device: f16 or f32.")
    var dtype = "f16"
    @Option(help: "Also write a labelled comparison grid of the manifest's first expanded line (one or two axes) to this PNG.")
    var grid: String?
    @Option(help: "Machine logs: jsonl prints one JSON line per job event on stderr instead of the progress line.")
    var log: String?
    @Flag(help: "Print a JSON summary on stdout at the end.")
    var json = false
    @Flag(help: "No progress on stderr.")
    var quiet = false
    @Flag(help: "Print an sbatch array script for --shards N shards of this command instead of rendering.")
    var emitSbatch = false

    func run() throws {
        do {
            try render()
        } catch let error as CommandFailure {
            printError("kiln render: \(error.message)")
            throw ExitCode(error.exitCode)
        } catch let error as ExitCode {
            throw error
        } catch {
            printError("kiln render: \(error)")
            throw ExitCode.failure
        }
    }

    private func render() throws {
        if emitSbatch { return try printSbatch() }
        guard ["f16", "f32"].contains(dtype) else { throw CommandFailure.badInput("--dtype must be f16 or f32, got '\(dtype)'") }
        guard retries >= 0 else { throw CommandFailure.badInput("--retries \(retries): must be 0 or more") }
        if let log, log != "jsonl" { throw CommandFailure.badInput("--log must be jsonl, got '\(log)'") }
        let shard: Shard
        do {
            shard = try Shard.resolve(shard: self.shard, shards: shards, environment: ProcessInfo.processInfo.environment)
        } catch {
            throw CommandFailure.badInput("\(error)")
        }
        if grid != nil && shard.count > 1 { throw CommandFailure.badInput("--grid needs the whole manifest in one process (no shards)") }
        let manifest = try files.load()
        let gridLayout: ComparisonGrid?
        do {
            gridLayout = try grid.map { _ in try ComparisonGrid(manifest: manifest) }
        } catch {
            throw CommandFailure.badInput("\(error)")
        }
        let options = RenderRunner.Options(
            outputFolder: URL(fileURLWithPath: files.out), shard: shard, retries: retries, defaultModel: model.map(URL.init(fileURLWithPath:)) ?? DefaultModel.location(),
            configFolder: config.map(URL.init(fileURLWithPath:)), backend: backend,
            devices: devices.map { $0.split(separator: ",").map { String($0) } } ?? [nil], dtype: dtype == "f32" ? .float32 : .float16)
        let runner = RenderRunner(manifest: manifest, options: options)
        do {
            try runner.validate()
        } catch RenderError.badInput(let message) {
            throw CommandFailure.badInput(message)
        } catch let error as PipelineError {
            throw CommandFailure(error)
        }

        let stop = StopSignal.install()
        let reporter = RenderProgress(total: runner.shardJobs.count, mode: quiet ? .quiet : log == "jsonl" ? .jsonLines : .text)
        let summary = try CommandFailure.mapping { try runner.run(events: reporter.report, stopRequested: stop.isRequested) }
        reporter.finish()
        if let grid, let gridLayout, summary.done + summary.alreadyDone == summary.total {
            try CommandFailure.mapping {
                try gridLayout.image(folder: options.outputFolder).write(to: URL(fileURLWithPath: grid))
            }
        }
        if json {
            try printJSON(summary)
        } else if !quiet {
            printError("\(summary.total) jobs in shard \(shard): \(summary.done) rendered, \(summary.alreadyDone) already done, "
                + "\(summary.failed) failed, \(summary.interrupted) interrupted (\(summary.images) images, "
                + String(format: "%.1f images/min)", summary.imagesPerMinute))
        }
        if summary.stopped || summary.interrupted > 0 { throw ExitCode(RenderCommand.interruptedExitCode) }
        if summary.failed > 0 { throw ExitCode.failure }
    }

    /// The sbatch script for this very command, its paths made absolute.
    private func printSbatch() throws {
        guard let shards, shards >= 1 else { throw CommandFailure.badInput("--emit-sbatch needs --shards N (the array's size)") }
        if shard != nil { throw CommandFailure.badInput("--emit-sbatch makes every shard's task: leave out --shard") }
        _ = try files.load()
        func absolute(_ path: String) -> String { URL(fileURLWithPath: path).standardizedFileURL.path }
        var arguments = [absolute(files.manifest), "--out", absolute(files.out), "--retries", "\(retries)", "--backend", backend, "--dtype", dtype]
        if let model { arguments += ["--model", absolute(model)] }
        if let config { arguments += ["--config", absolute(config)] }
        if let devices { arguments += ["--devices", devices] }
        if let log { arguments += ["--log", log] }
        if json { arguments.append("--json") }
        arguments.append("--quiet")
        let kiln = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
        print(SlurmScript.text(kiln: Bundle.main.executablePath ?? kiln, arguments: arguments, shards: shards), terminator: "")
    }
}

struct RenderStatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Merge every shard's ledger: done, failed, pending and interrupted jobs.")

    @OptionGroup var files: RenderFiles
    @Flag(help: "Print {\"total\", \"done\", \"failed\", \"pending\", \"interrupted\", \"failed_jobs\": [{\"id\", \"error\"}]}.")
    var json = false

    struct Report: Encodable {
        struct FailedJob: Encodable {
            let id: String
            let error: String
            let retryable: Bool
        }

        var total = 0
        var done = 0
        var failed = 0
        var pending = 0
        var interrupted = 0
        var failedJobs: [FailedJob] = []

        enum CodingKeys: String, CodingKey {
            case total, done, failed, pending, interrupted
            case failedJobs = "failed_jobs"
        }
    }

    func run() throws {
        do {
            let manifest = try files.load()
            let folder = URL(fileURLWithPath: files.out)
            let statuses = JobStatus.of(manifest.jobs, records: try RenderLedger.records(in: folder), folder: folder)
            var report = Report(total: manifest.jobs.count)
            for job in manifest.jobs {
                switch statuses[job.id] ?? .pending {
                case .done: report.done += 1
                case .pending: report.pending += 1
                case .interrupted: report.interrupted += 1
                case .failed(let error, let retryable):
                    report.failed += 1
                    report.failedJobs.append(.init(id: job.id, error: error, retryable: retryable))
                }
            }
            if json { return try printJSON(report) }
            print("\(report.total) jobs: \(report.done) done, \(report.failed) failed, \(report.pending) pending, \(report.interrupted) interrupted")
            for failed in report.failedJobs { print("  failed \(failed.id)\(failed.retryable ? "" : " (not retryable)"): \(failed.error)") }
        } catch let error as CommandFailure {
            printError("kiln render status: \(error.message)")
            throw ExitCode(error.exitCode)
        }
    }
}
