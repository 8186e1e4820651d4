import Foundation
import Kiln

/// A failure a command reports in one line and turns into its exit code: 2 for bad input
/// (checked before any work), 1 for a failure while working.
struct CommandFailure: Error {
    let message: String
    let exitCode: Int32

    static func badInput(_ message: String) -> CommandFailure { CommandFailure(message: message, exitCode: 2) }
    static func failed(_ message: String) -> CommandFailure { CommandFailure(message: message, exitCode: 1) }
}

extension CommandFailure {
    /// The pipeline's verdict as an exit code: bad input 2, everything else 1.
    init(_ error: PipelineError) {
        self.init(message: "\(error)", exitCode: error.isBadInput ? 2 : 1)
    }

    /// Runs `work`, turning a `PipelineError` into its exit code and any other error into 1.
    static func mapping<Result>(_ work: () throws -> Result) throws -> Result {
        do {
            return try work()
        } catch let error as PipelineError {
            throw CommandFailure(error)
        } catch let error as CommandFailure {
            throw error
        } catch {
            throw CommandFailure.failed("\(error)")
        }
    }
}

extension CommandFailure {
    /// The folder an option names, or bad input saying it is not there (`--lora-dir x: no such folder`).
    static func existingFolder(_ path: String, option: String) throws -> URL {
        let folder = URL(fileURLWithPath: path)
        guard folder.isExistingFolder else { throw badInput("\(option) \(path): no such folder") }
        return folder
    }
}
