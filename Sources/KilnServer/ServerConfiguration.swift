import Foundation

/// Everything `kiln serve` is started with.
public struct ServerConfiguration: Sendable {
    /// The model loaded at start (the front end fills in Kiln's default model when given none).
    public var model: URL?
    /// Where `sd-models` finds the other models that may be loaded.
    public var modelsDirectory: URL?
    /// Where `<lora:name:weight>` prompt tags of the A1111 routes are looked up.
    public var loraDirectory: URL?
    /// A tiny autoencoder (TAESD) for progress previews decoded at full size.
    public var tinyAutoencoder: URL?
    public var host = "127.0.0.1"
    /// 0 picks a free port (printed at start).
    public var port = 7860
    /// HTTP Basic credentials; empty means no authentication.
    public var credentials: [BasicCredential] = []
    /// Origins allowed by CORS (`*` for any); empty turns CORS off.
    public var corsAllowedOrigins: [String] = []
    /// Jobs that may wait in the queue (the running one not counted).
    public var maximumQueue = 64
    public var maximumBodyBytes = 64 * 1_048_576
    /// Seconds a finished async job's results are kept before they answer 410.
    public var resultRetention: TimeInterval = 600
    /// Per request: images in one batch and generations (A1111's `batch_size` and `n_iter`).
    public var maximumBatchSize = 8
    public var maximumIterations = 16
    /// The largest width or height in pixels a request may ask for.
    public var maximumSide = 2048
    /// Seconds SIGTERM waits for the running job to stop at a step boundary before exiting anyway.
    public var shutdownTimeout: TimeInterval = 60
    /// `vulkan` or `cpu`, the device selector and the weights' storage type.
    public var backend = "vulkan"
    public var device: String?
    public var dtype = "f16"

    public init() {}
}

/// One `user:password` pair of `--api-auth`.
public struct BasicCredential: Sendable, Equatable {
    public let user: String
    public let password: String

    public init(user: String, password: String) {
        self.user = user
        self.password = password
    }

    /// Parses `user:pass[,user2:pass2]` (a password may hold colons; a user may not).
    public static func parseList(_ text: String) throws -> [BasicCredential] {
        try text.split(separator: ",").map { pair in
            guard let colon = pair.firstIndex(of: ":"), colon != pair.startIndex else {
                throw APIError(.badRequest, field: "--api-auth", "'\(pair)' is not user:password")
            }
            return BasicCredential(user: String(pair[..<colon]), password: String(pair[pair.index(after: colon)...]))
        }
    }
}
