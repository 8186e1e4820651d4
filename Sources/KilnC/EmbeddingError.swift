import CKiln
import Kiln

/// A problem with a C caller's arguments that Kiln itself would never see: a NULL pointer, a
/// struct of the wrong size, a name that does not parse. Always bad input.
struct EmbeddingError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}

/// Where Swift meets C: every error thrown below an entry point is caught here and becomes a
/// status plus the message `kiln_last_error` returns, so no Swift error ever crosses into C.
enum Boundary {
    /// Runs `body` for the entry point `function`, recording its error in `messages` (or clearing
    /// the calling thread's last one when it succeeds).
    static func call(_ function: String, messages: ThreadMessages, _ body: () throws -> Void) -> kiln_status {
        do {
            try body()
            messages.record(nil)
            return KILN_OK
        } catch {
            messages.record("\(function): \(error)")
            return status(of: error)
        }
    }

    /// The status of `error`: the pipeline's verdict (bad input, cancelled, or failed while
    /// working); argument errors are bad input; anything else failed while working.
    static func status(of error: Error) -> kiln_status {
        switch error {
        case let error as PipelineError:
            if error == .cancelled { return KILN_CANCELLED }
            return error.isBadInput ? KILN_BAD_INPUT : KILN_FAILED
        case is EmbeddingError:
            return KILN_BAD_INPUT
        default:
            return KILN_FAILED
        }
    }
}
