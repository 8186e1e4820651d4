import Foundation
import Kiln

/// A one-line progress bar on stderr with the step, seconds per step and the time left. On a
/// terminal it redraws in place; in a log (render farms) it prints one line per step.
final class ProgressBar {
    private let enabled: Bool
    private let interactive = isatty(STDERR_FILENO) != 0
    private var drawn = false

    init(enabled: Bool) { self.enabled = enabled }

    func report(_ progress: GenerationProgress) {
        guard enabled else { return }
        switch progress.stage {
        case .encodingText:
            line(String(format: "text encoded in %.2f s", progress.lastSeconds), final: true)
        case .encodingImage:
            line(String(format: "init image encoded in %.2f s", progress.lastSeconds), final: true)
        case .denoising:
            let done = progress.step, total = max(progress.stepCount, 1)
            let width = 30
            let filled = width * done / total
            let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
            line(String(format: "step %d/%d [%@] %.2f s/step, ETA %@", done, total, bar, progress.lastSeconds,
                        Self.clock(progress.estimatedSecondsLeft)),
                 final: done == total)
        case .decoding:
            line(String(format: "decoded in %.2f s (total %.2f s)", progress.lastSeconds, progress.elapsedSeconds), final: true)
        }
    }

    /// Ends a line left open by an interrupted run.
    func finish() {
        if drawn && interactive { FileHandle.standardError.write(Data("\n".utf8)) }
        drawn = false
    }

    private func line(_ text: String, final: Bool) {
        if interactive {
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + text + (final ? "\n" : "")).utf8))
            drawn = !final
        } else {
            FileHandle.standardError.write(Data((text + "\n").utf8))
        }
    }

    static func clock(_ seconds: Double) -> String {
        let whole = Int(seconds.rounded())
        return String(format: "%d:%02d", whole / 60, whole % 60)
    }
}
