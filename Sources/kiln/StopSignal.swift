import Dispatch
import Foundation

/// SIGTERM and SIGINT turned into a flag that long work polls at safe points (a render stops at
/// the next sampling step), instead of killing the process mid-write.
final class StopSignal: @unchecked Sendable {
    private let lock = NSLock()
    private var requested = false
    private var sources: [DispatchSourceSignal] = []

    /// Installs the handlers; keep the result alive while the work runs.
    static func install(signals: [Int32] = [SIGTERM, SIGINT]) -> StopSignal {
        let stop = StopSignal()
        for number in signals {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [weak stop] in stop?.request() }
            source.resume()
            stop.sources.append(source)
        }
        return stop
    }

    func request() { lock.withLock { requested = true } }

    var isRequested: @Sendable () -> Bool { { [self] in lock.withLock { requested } } }
}
