import Foundation
import Hummingbird

extension Request {
    /// Runs `operation` with this request's JSON body, cancelling it if the client disconnects
    /// while it runs (a synchronous generation then cancels its job). The body is read inside,
    /// up to `maximumBytes` (413 beyond).
    func withJSONBody(maximumBytes: Int, _ operation: @escaping @Sendable (JSONValue) async throws -> Response) async throws -> Response {
        try await body.consumeWithCancellationOnInboundClose { body in
            let buffer = try await body.collect(upTo: maximumBytes)
            return try await operation(try JSONValue.parse(Data(buffer.readableBytesView)))
        }
    }

    /// The JSON body, read up to `maximumBytes` (413 beyond).
    func jsonBody(maximumBytes: Int) async throws -> JSONValue {
        let buffer = try await body.collect(upTo: maximumBytes)
        return try JSONValue.parse(Data(buffer.readableBytesView))
    }
}
