import Foundation
import Kiln
@testable import KilnServer

/// A body of the OpenAI images API's `POST /v1/images/generations`, read into a plan for each
/// kind of model, then the checks before queueing.
enum OpenAIRequestTarget {
    static func run(_ data: Data) {
        guard let body = try? JSONValue.parse(data) else { return }
        for model in ServerRequestParts.models {
            guard let parsed = try? OpenAIImageRequest.parse(
                body, model: model, catalog: ServerRequestParts.catalog, configuration: ServerRequestParts.configuration) else { continue }
            ServerRequestParts.validate(parsed.plan.requests)
        }
    }
}
