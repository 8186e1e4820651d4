import Foundation
import Kiln
@testable import KilnRender

/// A `kiln render` manifest: JSON Lines or plain prompts as the file's name and first line say,
/// expanded into jobs (lists and seed ranges), then each job turned into the request its worker
/// runs, with the request's own checks; output names as the ledger writes them.
enum RenderManifestTarget {
    static let manifest = URL(fileURLWithPath: "/fuzz/manifest")
    static let defaults = ModelConfigTarget.defaults

    static func run(_ data: Data) {
        guard let text = FuzzParts.text(data) else { return }
        let plainText = RenderManifest.isPlainText(url: manifest, text: text)
        guard let jobs = try? RenderManifest.parse(text, name: manifest.path, plainText: plainText) else { return }
        for job in jobs.prefix(64) {
            _ = job.outputNames
            guard let request = try? JobRequests.request(for: job, defaults: defaults, manifest: manifest) else { continue }
            _ = try? request.validate(sizeMultiple: 8)
        }
    }
}
