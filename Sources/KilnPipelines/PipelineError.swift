/// Why a generation could not start or stopped.
public enum PipelineError: Error, Equatable, CustomStringConvertible {
    /// The request itself is wrong (a size, a range, a missing image); names the setting.
    case invalidRequest(String)
    /// The model cannot do what was asked (e.g. inpainting mode on a model family without it).
    case unsupported(String)
    /// A value became NaN or infinite (f16 overflow, a broken checkpoint): stopped rather than
    /// writing a gray image.
    case numericalFailure(String)
    /// The model's weights cannot fit the device; names every component's size and the capacity.
    case insufficientMemory(String)
    /// The caller cancelled the task.
    case cancelled

    public var description: String {
        switch self {
        case .invalidRequest(let message): return "invalid request: \(message)"
        case .unsupported(let message): return "unsupported: \(message)"
        case .numericalFailure(let message): return "numerical failure: \(message)"
        case .insufficientMemory(let message): return "insufficient memory: \(message)"
        case .cancelled: return "cancelled"
        }
    }
}
