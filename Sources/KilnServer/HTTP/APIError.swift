import Foundation
import Hummingbird
import KilnPipelines

/// An error answered to the client as JSON: `{"error": kind, "detail": message, "field": name}`
/// with an HTTP status (400 for a body that does not parse, 422 for a field Kiln refuses, 404,
/// 410, 413, 429 with `Retry-After`, 5xx for failures while working). A1111 clients read
/// `detail`; OpenAI clients read `error.message`, so both shapes are written.
public struct APIError: Error, Sendable, CustomStringConvertible {
    public var status: HTTPResponse.Status
    /// The request field at fault (`steps`, `init_images[0]`), when one is.
    public var field: String?
    public var message: String
    public var headers: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, field: String?, _ message: String) {
        self.status = status
        self.field = field
        self.message = message
    }

    public var description: String { "\(status.code) \(field.map { "\($0): " } ?? "")\(message)" }

    /// A refused field: 422 naming it.
    static func invalid(_ field: String, _ message: String) -> APIError {
        APIError(.unprocessableContent, field: field, "\(field): \(message)")
    }

    /// How a pipeline error reaches a client: bad input is 422 (507 when the model or the
    /// request cannot fit the device), a cancellation 499-like 409, a lost device 503 (the server
    /// opens it again; the next request is served), anything else 500.
    static func from(_ error: PipelineError) -> APIError {
        switch error {
        case .deviceLost: APIError(.serviceUnavailable, field: nil, error.description)
        case .insufficientMemory: APIError(.init(code: 507, reasonPhrase: "Insufficient Storage"), field: nil, error.description)
        case .cancelled: APIError(.conflict, field: nil, "the job was cancelled")
        case _ where error.isBadInput: APIError(.unprocessableContent, field: Self.field(named: error), error.description)
        default: APIError(.internalServerError, field: nil, error.description)
        }
    }

    /// The request setting a pipeline's message starts with ("steps 0: ...", "size 60x64: ..."),
    /// mapped to the field names clients send.
    private static func field(named error: PipelineError) -> String? {
        let text: String
        switch error {
        case .invalidRequest(let message), .unsupported(let message): text = message
        default: return nil
        }
        let prefixes: [(String, String)] = [
            ("size", "width"), ("steps", "steps"), ("strength", "denoising_strength"), ("guidance", "cfg_scale"),
            ("init image", "init_images"), ("mask", "mask"), ("batch", "batch_size"), ("karras", "scheduler"),
            ("exponential", "scheduler"), ("sampler", "sampler_name"),
        ]
        return prefixes.first(where: { text.lowercased().hasPrefix($0.0) })?.1
    }

    /// The JSON body: A1111's `detail`, OpenAI's `error` object, and Kiln's `field`.
    var body: JSONValue {
        .object([
            ("detail", .string(message)),
            ("field", .optional(field)),
            ("error", .object([
                ("message", .string(message)), ("type", .string(Self.kind(status))), ("param", .optional(field)),
                ("code", .integer(Int(status.code))),
            ])),
        ])
    }

    private static func kind(_ status: HTTPResponse.Status) -> String {
        switch status.code {
        case 400, 422: "invalid_request_error"
        case 401: "authentication_error"
        case 404, 410: "not_found_error"
        case 413: "request_too_large"
        case 429: "rate_limit_error"
        default: "server_error"
        }
    }

    func response() -> Response {
        var response = Response.json(body, status: status)
        for field in headers { response.headers.append(field) }
        return response
    }
}

extension Response {
    /// A JSON response from `value`.
    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: value.serialized())))
    }
}

/// Turns every error a route throws into a JSON error response, so no failure escapes as an
/// empty 500 and no client sees a stack trace.
struct APIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            if !(error is APIError || error is PipelineError || error is HTTPResponseError || error is CancellationError) {
                context.logger.error("unexpected error on \(request.uri.path): \(error)")
            }
            return Self.response(for: error, request: request)
        }
    }

    /// The JSON error response for anything a route throws.
    static func response(for error: Error, request: Request) -> Response {
        switch error {
        case let error as APIError:
            return error.response()
        case let error as PipelineError:
            return APIError.from(error).response()
        case let error as HTTPResponseError:
            let status = error.status
            let message = switch status {
            case .contentTooLarge: "the body is larger than the server's limit (--max-body-mb)"
            case .notFound, .methodNotAllowed: "no route \(request.method) \(request.uri.path)"
            default: status.reasonPhrase
            }
            return APIError(status, field: nil, message).response()
        case is CancellationError:
            return APIError(.serviceUnavailable, field: nil, "the request was cancelled").response()
        default:
            return APIError(.internalServerError, field: nil, "\(error)").response()
        }
    }
}
