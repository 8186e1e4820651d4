import Foundation
import Hummingbird
import Kiln
import NIOCore
import ServiceLifecycle

/// `kiln serve`: the HTTP front end over one `GenerationService`. The A1111 API (`/sdapi/v1`),
/// the OpenAI images API (`/v1`), Kiln's async jobs (`/kiln/v1/jobs`), `/health`, `/metrics` and
/// the web page, behind Basic authentication, CORS and a body limit when configured.
public enum KilnServer {
    /// Every route, with the middlewares in the order a request meets them: errors as JSON,
    /// latency, CORS (preflights answered before authentication), authentication, body limit.
    public static func router(for service: GenerationService) -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        let configuration = service.configuration
        router.middlewares.add(APIErrorMiddleware())
        router.middlewares.add(LatencyMiddleware(metrics: service.metrics))
        if !configuration.corsAllowedOrigins.isEmpty { router.middlewares.add(CORSMiddleware(origins: configuration.corsAllowedOrigins)) }
        if !configuration.credentials.isEmpty { router.middlewares.add(BasicAuthMiddleware(credentials: configuration.credentials)) }
        router.middlewares.add(BodyLimitMiddleware(maximumBytes: configuration.maximumBodyBytes))
        A1111Routes(service: service).add(to: router)
        OpenAIRoutes(service: service).add(to: router)
        JobRoutes(service: service).add(to: router)
        OperationRoutes(service: service).add(to: router)
        return router
    }

    /// The application listening on the configured address; `onListening` gets the bound
    /// address (the real port when 0 was asked for).
    public static func application(
        for service: GenerationService, onListening: @escaping @Sendable (String, Int) -> Void = { _, _ in }
    ) -> some ApplicationProtocol {
        Application(
            router: router(for: service),
            configuration: .init(address: .hostname(service.configuration.host, port: service.configuration.port), serverName: "kiln/\(KilnVersion.string)"),
            onServerRunning: { channel in
                let address = channel.localAddress
                onListening(address?.ipAddress ?? service.configuration.host, address?.port ?? service.configuration.port)
            })
    }

    /// Serves until SIGTERM or SIGINT: then new jobs are refused, queued ones cancelled, the
    /// running one stopped at its next step, the HTTP server drained, and the call returns. If
    /// the running job has not stopped within `shutdownTimeout`, the process exits anyway (0).
    public static func run(_ service: GenerationService, onListening: @escaping @Sendable (String, Int) -> Void) async throws {
        let app = application(for: service, onListening: onListening)
        // Services stop in reverse order: the queue first (so waiting clients are answered),
        // then the HTTP server.
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: app), .init(service: service), .init(service: ShutdownDeadline(seconds: service.configuration.shutdownTimeout))],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: app.logger))
        try await group.run()
    }
}

/// Exits the process `seconds` after a graceful shutdown began, should anything still be
/// running then, so SIGTERM always ends the server in bounded time.
struct ShutdownDeadline: Service {
    let seconds: TimeInterval

    func run() async throws {
        try? await gracefulShutdown()
        let deadline = seconds
        Thread.detachNewThread {
            Thread.sleep(forTimeInterval: deadline)
            FileHandle.standardError.write(Data("kiln serve: shutdown took longer than \(Int(deadline)) s; exiting\n".utf8))
            exit(0)
        }
    }
}
