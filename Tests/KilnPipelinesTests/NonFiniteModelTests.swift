import Foundation
import Kiln
import Testing

/// A model whose weights hold a NaN or an infinity must stop with a non-finite error naming the
/// stage and step, on every backend and for every family, and `kiln generate` must exit 1 and
/// write no image. A kernel that turned NaN into a finite value would let a speckled picture out.
@Suite(.serialized) struct NonFiniteModelTests {
    static let families: [ModelFamily] = [.stableDiffusion1, .stableDiffusionXL, .stableDiffusion3, .flux, .diT]

    @Test(arguments: families, [Float.nan, .infinity])
    func poisonedWeightsStopTheRun(_ family: ModelFamily, _ value: Float) throws {
        let folder = try ModelFolders.poisoned(family, value: value)
        defer { try? FileManager.default.removeItem(at: folder) }
        for (backend, dtype) in [(CPUBackend() as Backend, DType.float32), (try PipelineParityTests.vulkan.get(), .float32), (try PipelineParityTests.vulkan.get(), .float16)] {
            let pipeline = try Pipelines.open(folder, backend: backend, dtype: dtype)
            do {
                _ = try pipeline.generate(ModelFolders.request(family, pipeline: pipeline))
                Issue.record("\(family) \(value) on \(backend.name) \(dtype.shortName): the run finished")
            } catch let error as PipelineError {
                guard case .nonFinite(let stage, let step, _) = error else {
                    Issue.record("\(family) on \(backend.name): \(error)")
                    continue
                }
                #expect(stage == .denoising && step == 1, "\(family) \(value) \(backend.name) \(dtype.shortName): \(error)")
                #expect(!error.isBadInput)
            }
        }
    }

    @Test(arguments: families)
    func generateExitsWithOneAndWritesNothing(_ family: ModelFamily) throws {
        let folder = try ModelFolders.poisoned(family)
        let scratch = try GenerateCommandTests.scratch()
        defer {
            try? FileManager.default.removeItem(at: folder)
            try? FileManager.default.removeItem(at: scratch)
        }
        let conditioning = family == .diT ? ["--class-label", "1"] : ["--prompt", "a red boat"]
        var size = family == .stableDiffusion3 ? ["--width", "32", "--height", "24"] : ["--width", "64", "--height", "64"]
        if family == .diT { size = [] }
        let t5 = family == .stableDiffusion3 || family == .flux ? ["--max-sequence-length", "8"] : []
        for backend in ["cpu", "vulkan"] {
            let output = scratch.appendingPathComponent("out-\(backend).png")
            let run = try GenerateCommandTests.kiln(["generate", "--model", folder.path, "--steps", "2", "--backend", backend, "--quiet",
                                                     "--output", output.path] + conditioning + size + t5)
            #expect(run.status == 1, "\(family) \(backend): exit \(run.status), \(run.errors)")
            #expect(run.errors.contains("numerical failure while denoising (step 1)"), "\(family) \(backend): \(run.errors)")
            #expect(!FileManager.default.fileExists(atPath: output.path), "\(family) \(backend): an image was written")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path).isEmpty)
    }
}
