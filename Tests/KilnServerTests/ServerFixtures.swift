import Foundation
import Hummingbird
import HummingbirdTesting
import Kiln
@testable import KilnServer
import NIOCore

/// A tiny random-weight SD1 model (assembled once by `scripts/tiny-model.py`) and servers over it
/// on the CPU backend.
enum ServerFixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    private static let lock = NSLock()
    nonisolated(unsafe) private static var folder: URL?

    /// The model folder, made on first use.
    static func model() throws -> URL {
        lock.lock()
        defer { lock.unlock() }
        if let folder { return folder }
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-serve-tiny-\(UUID().uuidString)")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", root.appendingPathComponent("scripts/tiny-model.py").path, output.path]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw APIError(.internalServerError, field: nil, "tiny-model.py failed") }
        folder = output
        return output
    }

    /// A service on the CPU backend with `change` applied to its configuration.
    static func service(_ change: (inout ServerConfiguration) -> Void = { _ in }) throws -> GenerationService {
        var configuration = ServerConfiguration()
        configuration.model = try model()
        configuration.backend = "cpu"
        change(&configuration)
        return try GenerationService(configuration: configuration, device: try BackendChoice.open("cpu"), dtype: .float32)
    }

    /// Runs `test` against a live server through AsyncHTTPClient (real sockets and a connection
    /// pool, so `Connection: close` answers and disconnects behave as for clients)
    /// with the service's worker running beside it.
    static func withServer(_ service: GenerationService, _ test: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let app = Application(router: KilnServer.router(for: service), configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              services: [service])
        try await app.test(.ahc(.http)) { client in try await test(client) }
    }

    static func json(_ response: TestResponse) throws -> JSONValue {
        try JSONValue.parse(Data(response.body.readableBytesView))
    }

    static func body(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }
}
