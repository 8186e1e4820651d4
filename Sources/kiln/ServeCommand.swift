import ArgumentParser
import Foundation
import Kiln
import KilnServer

/// `kiln serve`: an HTTP server speaking AUTOMATIC1111's `/sdapi/v1` API, the OpenAI images API
/// and Kiln's async jobs, with one bounded queue, live previews, a web page, `/health` and
/// `/metrics`. Bad options exit 2 before anything loads; a model that does not open exits 1.
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a model over HTTP: the A1111 API (/sdapi/v1), the OpenAI images API (/v1), async jobs (/kiln/v1/jobs) and a web page.")

    @Option(help: "The model to load at start: a diffusers folder or a .safetensors file (default: Kiln's built-in model).")
    var model: String?
    @Option(help: "A folder of models (diffusers folders and .safetensors files) that clients may switch to.")
    var modelsDir: String?
    @Option(help: "A folder of LoRA files that <lora:name:weight> tags in A1111 prompts name (A1111's models/Lora).")
    var loraDir: String?
    @Option(help: "A tiny autoencoder (TAESD: a diffusers AutoencoderTiny folder or a taesd*_decoder.safetensors file) for full-size progress previews.")
    var taesd: String?
    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"
    @Option(help: "Port (0 picks a free one; the bound address is printed).")
    var port = 7860
    @Option(help: "HTTP Basic credentials required on every route: user:pass[,user2:pass2].")
    var apiAuth: String?
    @Option(help: "Origins allowed by CORS, comma-separated ('*' for any); CORS is off without it.")
    var corsAllowOrigins: String?
    @Option(help: "Jobs that may wait in the queue; more get 429 with Retry-After.")
    var maxQueue = 64
    @Option(help: "Largest request body in MiB; larger ones get 413.")
    var maxBodyMb = 64
    @Option(help: "Seconds finished async jobs keep their results (then 410).")
    var resultTtl = 600
    @Option(help: "Most images in one batch (A1111 batch_size, OpenAI n).")
    var maxBatch = 8
    @Option(help: "Most generations in one request (A1111 n_iter).")
    var maxIterations = 16
    @Option(help: "Largest width or height in pixels.")
    var maxSide = 2048
    @Option(help: "Seconds SIGTERM waits for the running job to stop before exiting anyway.")
    var shutdownTimeout = 60
    @Option(help: "vulkan or cpu.")
    var backend = "vulkan"
    @OptionGroup var deviceOptions: DeviceOptions
    @Option(help: "Weights and activations on the device: f16 or f32 (the CPU backend computes in f32).")
    var dtype = "f16"

    func run() throws {
        let configuration: ServerConfiguration
        let storage: DType
        do {
            (configuration, storage) = try settings()
        } catch let error as CommandFailure {
            printError("kiln serve: \(error.message)")
            throw ExitCode(error.exitCode)
        }
        let service: GenerationService
        do {
            let device = try BackendChoice.open(backend, device: deviceOptions.device)
            printError("kiln serve: loading \(configuration.model?.path ?? "") on \(device.deviceName)")
            service = try GenerationService(configuration: configuration, device: device, dtype: storage)
        } catch let error as PipelineError {
            printError("kiln serve: \(error)")
            throw ExitCode(error.isBadInput ? 2 : 1)
        } catch {
            printError("kiln serve: \(error)")
            throw ExitCode.failure
        }
        // Swift concurrency runs the server; this synchronous command waits for it.
        let finished = DispatchSemaphore(value: 0)
        let outcome = Locked<Error?>(nil)
        Task {
            do {
                try await KilnServer.run(service) { host, port in
                    let shown = host.contains(":") ? "[\(host)]" : host
                    // Unbuffered, so scripts reading stdout see the address at once.
                    FileHandle.standardOutput.write(Data("kiln serve: listening on http://\(shown):\(port)\n".utf8))
                }
            } catch {
                outcome.set(error)
            }
            finished.signal()
        }
        finished.wait()
        if let error = outcome.value {
            printError("kiln serve: \(error)")
            throw ExitCode.failure
        }
        printError("kiln serve: stopped")
    }

    private func settings() throws -> (ServerConfiguration, DType) {
        guard let storage = DType.allCases.first(where: { $0.shortName == dtype }), storage == .float16 || storage == .float32 else {
            throw CommandFailure.badInput("--dtype must be f16 or f32, got '\(dtype)'")
        }
        var configuration = ServerConfiguration()
        configuration.model = try model.map(URL.init(fileURLWithPath:)) ?? CommandFailure.mapping { try DefaultModel.requiredLocation() }
        configuration.modelsDirectory = try modelsDir.map { try CommandFailure.existingFolder($0, option: "--models-dir") }
        configuration.loraDirectory = try loraDir.map { try CommandFailure.existingFolder($0, option: "--lora-dir") }
        if let taesd {
            guard FileManager.default.fileExists(atPath: taesd) else { throw CommandFailure.badInput("--taesd \(taesd): no such file or folder") }
            configuration.tinyAutoencoder = URL(fileURLWithPath: taesd)
        }
        guard (0...65535).contains(port) else { throw CommandFailure.badInput("--port \(port): must be 0...65535") }
        configuration.host = host
        configuration.port = port
        if let apiAuth {
            do {
                configuration.credentials = try BasicCredential.parseList(apiAuth)
            } catch {
                throw CommandFailure.badInput("--api-auth: \(error)")
            }
            if configuration.credentials.isEmpty { throw CommandFailure.badInput("--api-auth: give user:password") }
        }
        configuration.corsAllowedOrigins = corsAllowOrigins?.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } ?? []
        for (name, value, range) in [
            ("--max-queue", maxQueue, 1...100_000), ("--max-body-mb", maxBodyMb, 1...4096), ("--result-ttl", resultTtl, 1...604_800),
            ("--max-batch", maxBatch, 1...GenerationRequest.Limits.images), ("--max-iterations", maxIterations, 1...1000),
            ("--max-side", maxSide, 8...GenerationRequest.Limits.side), ("--shutdown-timeout", shutdownTimeout, 1...86_400),
        ] where !range.contains(value) {
            throw CommandFailure.badInput("\(name) \(value): must be \(range.lowerBound)...\(range.upperBound)")
        }
        configuration.maximumQueue = maxQueue
        configuration.maximumBodyBytes = maxBodyMb * 1_048_576
        configuration.resultRetention = TimeInterval(resultTtl)
        configuration.maximumBatchSize = maxBatch
        configuration.maximumIterations = maxIterations
        configuration.maximumSide = maxSide
        configuration.shutdownTimeout = TimeInterval(shutdownTimeout)
        configuration.backend = backend
        configuration.device = deviceOptions.device
        configuration.dtype = dtype
        return (configuration, storage)
    }
}

/// A value shared between the server's task and the command's thread.
private final class Locked<Value>: @unchecked Sendable {
    // Unchecked: every access goes through `lock`.
    private let lock = NSLock()
    private var stored: Value

    init(_ value: Value) { stored = value }

    func set(_ value: Value) {
        lock.lock()
        stored = value
        lock.unlock()
    }

    var value: Value {
        lock.lock()
        defer { lock.unlock() }
        return stored
    }
}
