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

    /// The run's summary: one JSON object on stdout with `--json`, else one line on stderr
    /// unless `--quiet`.
    func finish(
        outputs: [String], seed: UInt64, steps: Int, width: Int, height: Int, sampler: String, device: String,
        denoisingSteps: Int, stageSeconds: [GenerationProgress.Stage: Double]
    ) throws {
        let summary = Summary(
            outputs: outputs, latents: saveLatents, seed: seed, steps: steps, width: width, height: height, sampler: sampler,
            device: device, seconds: stageSeconds.reduce(into: [:]) { $0[$1.key.rawValue] = $1.value },
            secondsPerStep: (stageSeconds[.denoising] ?? 0) / Double(max(denoisingSteps, 1)))
        if json {
            try printJSON(summary)
        } else if !quiet {
            printError("wrote \(outputs.joined(separator: ", ")) (seed \(seed))")
        }
    }

    func finish(
        outputs: [String], request: GenerationRequest, sampler: String, device: String,
        stageSeconds: [GenerationProgress.Stage: Double], denoisingSteps: Int
    ) throws {
        try finish(outputs: outputs, seed: request.seed, steps: request.steps, width: request.width, height: request.height,
                   sampler: sampler, device: device, denoisingSteps: denoisingSteps, stageSeconds: stageSeconds)
    }
}
