/// Why a model could not be opened, a request could not start, or a generation stopped: the one
/// error type of every family, so every front end maps it the same way (`isBadInput`: exit code
/// 2 or an HTTP 4xx; otherwise 1 or a 5xx; `cancelled` apart).
public enum PipelineError: Error, Equatable, CustomStringConvertible {
    /// The request itself is wrong (a size, a range, a missing image); names the setting.
    case invalidRequest(String)
    /// The model cannot do what was asked (a mode, sampler or option its family lacks).
    case unsupported(String)
    /// The model could not be opened: a missing file, a config that does not parse, weights that
    /// do not fit the configuration, a family Kiln does not run.
    case invalidModel(String)
    /// The model or the request cannot fit the device; names the sizes and the capacity.
    case insufficientMemory(String)
    /// Something failed while working (the device, a kernel); names the stage.
    case failed(String)
    /// The device was lost (a GPU reset, a driver fault): names the device and the stage. Nothing
    /// runs on that backend any more; open the backend and the model again (`requiresReopening`).
    case deviceLost(String)
    /// A value became NaN or infinite (f16 overflow, a broken checkpoint): stopped rather than
    /// writing a gray image. `step` is the sampling step (1-based) for the denoising stage.
    case nonFinite(stage: GenerationProgress.Stage, step: Int?, detail: String)
    /// The caller cancelled.
    case cancelled

    /// True for errors the caller can fix by changing the request or the model, found before
    /// any work started.
    public var isBadInput: Bool {
        switch self {
        case .invalidRequest, .unsupported, .invalidModel, .insufficientMemory: true
        case .failed, .deviceLost, .nonFinite, .cancelled: false
        }
    }

    /// True when the pipeline's backend can run nothing any more: a new backend and pipeline
    /// must be opened before the next request.
    public var requiresReopening: Bool {
        if case .deviceLost = self { true } else { false }
    }

    public var description: String {
        switch self {
        case .invalidRequest(let message): "invalid request: \(message)"
        case .unsupported(let message): "unsupported: \(message)"
        case .invalidModel(let message): "invalid model: \(message)"
        case .insufficientMemory(let message): "insufficient memory: \(message)"
        case .failed(let message): "failed: \(message)"
        case .deviceLost(let message): "device lost: \(message)"
        case .nonFinite(let stage, let step, let detail):
            "numerical failure while \(stage.activity)\(step.map { " (step \($0))" } ?? ""): \(detail)"
        case .cancelled: "cancelled"
        }
    }
}
