import Foundation
import Hummingbird

extension Request {
    /// Runs `operation` with this request's JSON body, cancelling it if the client disconnects
    /// while it runs (a synchronous generation then cancels its job). The body is read inside,
    /// up to `maximumBytes` (413 beyond).
    ///
    /// Watching for the disconnect consumes the connection, so the answer (errors included)
    /// says `Connection: close` and clients open a new one for their next request rather than
    /// sending it down a connection the server no longer reads.
    func withJSONBody(maximumBytes: Int, _ operation: @escaping @Sendable (JSONValue) async throws -> Response) async throws -> Response {
        let request = self
        return try await body.consumeWithCancellationOnInboundClose { body in
            var response: Response
            do {
                let buffer = try await body.collect(upTo: maximumBytes)
                response = try await operation(try JSONValue.parse(Data(buffer.readableBytesView)))
            } catch let error where !(error is CancellationError) || !Task.isCancelled {
                response = APIErrorMiddleware<BasicRequestContext>.response(for: error, request: request)
            }
            response.headers[.connection] = "close"
            return response
        }
    }

    /// The JSON body, read up to `maximumBytes` (413 beyond).
    func jsonBody(maximumBytes: Int) async throws -> JSONValue {
        let buffer = try await body.collect(upTo: maximumBytes)
        return try JSONValue.parse(Data(buffer.readableBytesView))
    }
}
