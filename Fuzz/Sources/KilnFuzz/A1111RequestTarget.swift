import Foundation
import Kiln
@testable import KilnServer

/// A body of A1111's `POST /sdapi/v1/txt2img` and `/img2img`: JSON as the server parses it, read
/// into generation requests for each kind of model (prompt, LoRA tags, sampler names, sizes,
/// init images and masks in base64, override settings), then the checks before queueing.
enum A1111RequestTarget {
    static func run(_ data: Data) {
        guard let body = try? JSONValue.parse(data) else { return }
        let limits = A1111GenerationRequest.Limits(
            maximumBatchSize: ServerRequestParts.configuration.maximumBatchSize,
            maximumIterations: ServerRequestParts.configuration.maximumIterations,
            maximumSide: ServerRequestParts.configuration.maximumSide)
        for model in ServerRequestParts.models {
            for img2img in [false, true] {
                guard let parsed = try? A1111GenerationRequest.parse(
                    body, img2img: img2img, model: model, catalog: ServerRequestParts.catalog, limits: limits) else { continue }
                ServerRequestParts.validate(parsed.requests)
            }
        }
    }
}
