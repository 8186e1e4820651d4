import Foundation
import Kiln
@testable import KilnServer

/// What the server's request parsers check a body against: the loaded model's summary (one per
/// family, since several fields mean different things for SD3/FLUX or DiT), the catalog and the
/// server's default limits. No model is opened: the parsers only read the summary.
enum ServerRequestParts {
    static let configuration = ServerConfiguration()
    static let catalog = ModelCatalog(primary: URL(fileURLWithPath: "/fuzz/models/model"), directory: nil)

    static let models: [ModelSummary] = [
        summary(.stableDiffusion1, takesClassLabels: false, maxSequenceLength: nil),
        summary(.flux, takesClassLabels: false, maxSequenceLength: 512),
        summary(.diT, takesClassLabels: true, maxSequenceLength: nil),
    ]

    private static func summary(_ family: ModelFamily, takesClassLabels: Bool, maxSequenceLength: Int?) -> ModelSummary {
        let defaults = GenerationDefaults(
            width: 512, height: 512, steps: 30, guidanceScale: 7, sampler: "euler", imageToImageStrength: 0.75, inpaintingStrength: 1,
            maxSequenceLength: maxSequenceLength, takesClassLabels: takesClassLabels)
        return ModelSummary(
            entry: ModelEntry(url: URL(fileURLWithPath: "/fuzz/models/model")), family: family, defaults: defaults, weightBytes: 1 << 20,
            sha256: nil, dtype: "f16")
    }

    /// The checks every request passes before it is queued.
    static func validate(_ requests: [GenerationRequest]) {
        for request in requests { _ = try? request.validate(sizeMultiple: 8) }
    }
}
