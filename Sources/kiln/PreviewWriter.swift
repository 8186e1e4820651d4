import Foundation
import Kiln

/// `--preview PATH --preview-every N`: after every Nth denoising step (and the last) writes the
/// progress report's preview to PATH, atomically, so a viewer never reads half a file. The
/// preview is the tiny autoencoder's decode when the pipeline has one, else the latents' linear
/// RGB projection enlarged to the image's size. A preview that cannot be written is reported
/// once and never stops the generation.
final class PreviewWriter {
    let url: URL
    let every: Int
    private(set) var problem: String?

    init(path: String, every: Int) {
        url = URL(fileURLWithPath: path)
        self.every = max(every, 1)
    }

    func report(_ progress: GenerationProgress) {
        guard progress.stage == .denoising, problem == nil, let latents = progress.latents,
              progress.step % every == 0 || progress.step == progress.stepCount else { return }
        do {
            guard let image = try latents.decodedPreview() else { return }
            try AtomicFile.write(try GeneratedImages.pngData(image.preview, scale: image.scale), to: url)
        } catch {
            problem = "preview \(url.path): \(error)"
        }
    }
}
