/// Why a render could not start or a job could not be written.
public enum RenderError: Error, CustomStringConvertible, Equatable {
    /// Options or a manifest that cannot work; nothing was rendered.
    case badInput(String)
    /// The output folder or the ledger failed (full disk, permissions).
    case output(String)

    public var description: String {
        switch self {
        case .badInput(let message), .output(let message): message
        }
    }
}
