import Foundation
import Kiln
import KilnRender

/// A render's progress on stderr: on a terminal one line redrawn (jobs done of all, images per
/// minute, time left, the running job's step); in a log one line per job event; with
/// `--log jsonl` one JSON object per job event, for machine logs.
final class RenderProgress: @unchecked Sendable {
    enum Mode { case text, jsonLines, quiet }

    private let total: Int
    private let mode: Mode
    private let interactive = isatty(STDERR_FILENO) != 0
    private let lock = NSLock()
    private let start = Date()
    private var finished = 0
    private var images = 0
    private var drawn = false

    init(total: Int, mode: Mode) {
        self.total = total
        self.mode = mode
    }

    var report: @Sendable (RenderRunner.Event) -> Void { { [self] event in lock.withLock { handle(event) } } }

    func finish() {
        lock.withLock {
            if drawn { FileHandle.standardError.write(Data("\n".utf8)) }
            drawn = false
        }
    }

    private func handle(_ event: RenderRunner.Event) {
        switch event {
        case .alreadyDone(let job):
            finished += 1
            emit(job, "already_done", [:], text: nil)
        case .started(let job, let attempt, let worker):
            emit(job, "started", ["attempt": attempt, "worker": worker], text: nil)
        case .progress(let job, let progress):
            guard progress.stage == .denoising, mode == .text, interactive else { return }
            draw("\(summary()) — \(job.id) step \(progress.step)/\(progress.stepCount)")
        case .done(let job, let outputs, let seconds, let memory):
            finished += 1
            images += outputs.count
            emit(job, "done", ["seconds": seconds, "files": outputs.map(\.file), "sha256": outputs.map(\.sha256),
                               "resident_bytes": memory.residentBytes, "device_bytes": memory.deviceBytes],
                 text: String(format: "done %@ (%.1f s)", job.id, seconds))
        case .failed(let job, let error, let retryable, let willRetry):
            if !willRetry { finished += 1 }
            emit(job, "failed", ["error": error, "retryable": retryable, "will_retry": willRetry],
                 text: "failed \(job.id)\(willRetry ? ", retrying" : ""): \(error)")
        case .interrupted(let job):
            emit(job, "interrupted", [:], text: "interrupted \(job.id)")
        }
    }

    private func summary() -> String {
        let minutes = Date().timeIntervalSince(start) / 60
        let rate = minutes > 0 ? Double(images) / minutes : 0
        let jobsPerMinute = minutes > 0 ? Double(finished) / minutes : 0
        let left = jobsPerMinute > 0 ? Double(total - finished) / jobsPerMinute * 60 : 0
        return String(format: "%d/%d jobs, %.1f images/min, ETA %@", finished, total, rate, ProgressBar.clock(left))
    }

    private func emit(_ job: RenderJob, _ event: String, _ fields: [String: Any], text: String?) {
        switch mode {
        case .quiet:
            return
        case .jsonLines:
            var object = fields
            object["event"] = event
            object["id"] = job.id
            object["line"] = job.line
            object["time"] = Date().timeIntervalSince1970
            if let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) {
                FileHandle.standardError.write(data + Data("\n".utf8))
            }
        case .text:
            guard let text else { return }
            if interactive {
                draw("\(summary()) — \(text)")
            } else {
                FileHandle.standardError.write(Data("\(text) [\(summary())]\n".utf8))
            }
        }
    }

    private func draw(_ line: String) {
        FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
        drawn = true
    }
}
