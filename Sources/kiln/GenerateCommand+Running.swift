import Foundation
import Kiln

/// What every model family's `kiln generate` does around its pipeline call.
extension GenerateCommand {
    /// Runs one generation under the progress bar (finished whatever happens): a request the
    /// pipeline refuses exits 2, a failure while working exits 1.
    func runWithProgress<Result>(_ work: (_ report: (GenerationProgress) -> Void) throws -> Result) throws -> Result {
        let bar = ProgressBar(enabled: !quiet)
        defer { bar.finish() }
        do {
            return try work(bar.report)
        } catch let error as PipelineError {
            switch error {
            case .invalidRequest, .unsupported: throw CommandFailure.badInput("\(error)")
            default: throw CommandFailure.failed("\(error)")
            }
        } catch let error as FluxPipelineError {
            throw CommandFailure.badInput("\(error)")
        } catch let error as CommandFailure {
            throw error
        } catch {
            throw CommandFailure.failed("\(error)")
        }
    }

    /// `--save-latents`: the final latents `[B, C, h, w]` as one f32 tensor named `latents`.
    func saveLatentsIfAsked(_ latents: ShapedArray) throws {
        guard let saveLatents else { return }
        let tensor = HostTensor(shape: Shape(latents.shape), scalars: latents.scalars)
        try SafeTensorsFile.write(["latents": tensor], to: URL(fileURLWithPath: saveLatents))
    }
}
