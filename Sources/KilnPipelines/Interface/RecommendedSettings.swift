import Foundation

extension GenerationDefaults {
    /// The file in a model folder where its author recommends other defaults than its family's.
    /// It is Kiln's, not diffusers': diffusers keeps such settings in code, not in the folder.
    public static let recommendedSettingsFile = "generation_defaults.json"

    /// These defaults with the ones `folder`'s `generation_defaults.json` recommends (diffusers'
    /// call argument names: `num_inference_steps`, `guidance_scale`); unchanged when `folder` is
    /// nil, a file, or has no such file.
    func recommended(by folder: URL?) throws -> GenerationDefaults {
        guard let folder, folder.isExistingFolder else { return self }
        let file = folder.appendingPathComponent(Self.recommendedSettingsFile)
        guard FileManager.default.fileExists(atPath: file.path) else { return self }
        struct Recommended: Decodable {
            var steps: Int?
            var guidanceScale: Float?

            enum CodingKeys: String, CodingKey {
                case steps = "num_inference_steps"
                case guidanceScale = "guidance_scale"
            }
        }
        let settings: Recommended
        do {
            settings = try JSONDecoder().decode(Recommended.self, from: Data(contentsOf: file))
        } catch {
            throw PipelineError.invalidModel("\(file.path): \(error)")
        }
        var result = self
        if let steps = settings.steps {
            guard steps >= 1 else { throw PipelineError.invalidModel("\(file.path): num_inference_steps must be at least 1, got \(steps)") }
            result.steps = steps
        }
        if let guidance = settings.guidanceScale {
            guard guidance.isFinite else { throw PipelineError.invalidModel("\(file.path): guidance_scale must be finite") }
            result.guidanceScale = guidance
        }
        return result
    }
}
