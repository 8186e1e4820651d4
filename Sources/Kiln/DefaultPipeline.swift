import Foundation
import KilnDefaultModel
import KilnPipelines

extension DefaultModel {
    /// The folder, or an error that names every place it was looked for.
    public static func requiredLocation() throws -> URL {
        if let folder = location() { return folder }
        let searched = searchedLocations.map(\.path).joined(separator: ", ")
        throw PipelineError.invalidModel(
            "Kiln's default model \(name) is not installed (looked in \(searched)); give a model, or set KILN_DEFAULT_MODEL to its folder")
    }
}

extension Pipelines {
    /// Kiln's built-in model (``DefaultModel``) on `backend`: what every front end opens when it is
    /// given no model.
    public static func openDefault(backend: Backend, dtype: DType = .float16) throws -> any DiffusionPipeline {
        try open(DefaultModel.requiredLocation(), backend: backend, dtype: dtype)
    }
}
