import Foundation
import Hummingbird

/// HTTP Basic authentication on every route (`--api-auth`): a request without one of the
/// configured credentials gets 401 with `WWW-Authenticate: Basic`. Credentials are compared in
/// constant time, so response timing does not reveal how much of a guess was right.
///
/// `Authorization: Bearer user:password` is taken too, because OpenAI clients send their
/// `api_key` that way and cannot send Basic credentials.
struct BasicAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let credentials: [BasicCredential]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        // CORS preflights carry no credentials by the Fetch standard; they are answered before this.
        if let header = request.headers[.authorization], let (user, password) = Self.decode(header) ?? Self.decodeBearer(header) {
            var matched = false
            // Every credential is compared, whatever matched earlier, for the same reason.
            for credential in credentials {
                // Both halves are always compared (no short-circuit `&&`).
                let sameUser = Self.constantTimeEqual(Array(user.utf8), Array(credential.user.utf8))
                let samePassword = Self.constantTimeEqual(Array(password.utf8), Array(credential.password.utf8))
                if sameUser, samePassword { matched = true }
            }
            if matched { return try await next(request, context) }
        }
        var error = APIError(.unauthorized, field: nil, "authentication required (HTTP Basic, --api-auth)")
        error.headers[.wwwAuthenticate] = "Basic realm=\"kiln\", charset=\"UTF-8\""
        return error.response()
    }

    /// The user and password of an `Authorization: Basic base64(user:password)` header.
    static func decode(_ header: String) -> (String, String)? {
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "basic",
              let data = Data(base64Encoded: String(parts[1]).trimmingCharacters(in: .whitespaces)),
              let text = String(data: data, encoding: .utf8), let colon = text.firstIndex(of: ":") else { return nil }
        return (String(text[..<colon]), String(text[text.index(after: colon)...]))
    }

    /// The user and password of an `Authorization: Bearer user:password` header.
    static func decodeBearer(_ header: String) -> (String, String)? {
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer", let colon = parts[1].firstIndex(of: ":") else { return nil }
        return (String(parts[1][..<colon]), String(parts[1][parts[1].index(after: colon)...]))
    }

    /// Equal bytes, in time that depends only on the lengths.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
        let length = max(a.count, b.count)
        for index in 0..<length {
            let x = index < a.count ? a[index] : 0
            let y = index < b.count ? b[index] : 0
            difference |= x ^ y
        }
        return difference == 0 && a.count == b.count
    }
}

/// CORS for `--cors-allow-origins`: only listed origins (or any, with `*`) are answered with
/// `Access-Control-Allow-Origin`; preflight `OPTIONS` requests are answered here.
struct CORSMiddleware<Context: RequestContext>: RouterMiddleware {
    let origins: [String]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let origin = request.headers[.origin], origins.contains("*") || origins.contains(origin) else {
            return try await next(request, context)
        }
        var response: Response
        if request.method == .options, request.headers[.accessControlRequestMethod] != nil {
            response = Response(status: .noContent)
            response.headers[.accessControlAllowMethods] = "GET, POST, DELETE, OPTIONS"
            response.headers[.accessControlAllowHeaders] = request.headers[.accessControlRequestHeaders] ?? "Authorization, Content-Type"
            response.headers[.accessControlMaxAge] = "600"
        } else {
            response = try await next(request, context)
        }
        response.headers[.accessControlAllowOrigin] = origins.contains("*") ? "*" : origin
        if !origins.contains("*") {
            response.headers[.accessControlAllowCredentials] = "true"
            response.headers[.vary] = "Origin"
        }
        return response
    }
}

/// Refuses a body whose declared length exceeds `--max-body-mb` with 413 before reading it;
/// bodies without a length are cut at the same limit while they are read.
struct BodyLimitMiddleware<Context: RequestContext>: RouterMiddleware {
    let maximumBytes: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > maximumBytes {
            return APIError(.contentTooLarge, field: nil,
                            "the body is \(length) bytes; the server takes at most \(maximumBytes) (--max-body-mb)").response()
        }
        return try await next(request, context)
    }
}

/// Records each request's latency under its route group, for `/metrics`.
struct LatencyMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        defer {
            let elapsed = ContinuousClock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            metrics.request(route: Self.group(of: request.uri.path), seconds: seconds)
        }
        return try await next(request, context)
    }

    /// `/sdapi/v1/txt2img` -> `sdapi/txt2img`: a bounded set of labels, whatever the paths.
    static func group(of path: String) -> String {
        let parts = path.split(separator: "/")
        switch parts.first {
        case "sdapi":
            let name = parts.count > 2 ? String(parts[2]) : ""
            return A1111Routes.names.contains(name) ? "sdapi/\(name)" : "sdapi/other"
        case "v1": return parts.count > 1 && ["images", "models"].contains(parts[1]) ? "v1/\(parts[1])" : "v1/other"
        case "kiln": return "kiln/jobs"
        case nil: return "page"
        case "health", "metrics": return String(parts[0])
        default: return "other"
        }
    }
}
