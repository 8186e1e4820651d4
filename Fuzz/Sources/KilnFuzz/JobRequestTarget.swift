import Foundation
import Kiln
@testable import KilnServer

/// A body of Kiln's own `POST /kiln/v1/jobs` (a GenerationRequest in JSON), read into a plan for
/// each kind of model, then the checks before queueing.
enum JobRequestTarget {
    static func run(_ data: Data) {
        guard let body = try? JSONValue.parse(data) else { return }
        for model in ServerRequestParts.models {
            guard let plan = try? KilnJobRequest.parse(
                body, model: model, catalog: ServerRequestParts.catalog, configuration: ServerRequestParts.configuration) else { continue }
            ServerRequestParts.validate(plan.requests)
        }
    }
}
