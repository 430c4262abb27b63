public import MeshCanary
import Foundation
import Synchronization

/// A canary controller running on a thread of its own, so a dashboard can show it: every change
/// of its watch is posted to `board`; `abandon()` stops it at its next interval, and `wait()`
/// returns its exit code and final watch.
public final class CanaryThread: Sendable {
    public let board = CanaryBoard()
    private let state = Mutex<(code: Int32, watch: CanaryWatch?, abandoned: Bool)>((1, nil, false))

    /// Starts `controller` on `observer` from `watch` at `startMs`.
    public static func start(_ controller: CanaryController, observer: some CanaryObserver & Sendable, watch: CanaryWatch,
                             startMs: Int64) -> CanaryThread {
        let run = CanaryThread()
        run.board.post(watch)
        Thread.detachNewThread {
            var observer = observer
            let result = controller.run(&observer, watch: watch, startMs: startMs, stop: { run.abandoned }) { w, _ in run.board.post(w) }
            run.state.withLock { $0 = (result.code, result.watch, $0.abandoned) }
        }
        return run
    }

    private var abandoned: Bool { state.withLock { $0.abandoned } }

    /// Asks the controller to stop before a verdict (the canary stays at its weight, as it says).
    public func abandon() { state.withLock { $0.abandoned = true } }

    /// Waits for the controller to finish: its exit code (0 promoted) and final watch.
    public func wait() -> (code: Int32, watch: CanaryWatch) {
        while true {
            if let r = state.withLock({ s in s.watch.map { (s.code, $0) } }) { return r }
            Thread.sleep(forTimeInterval: 0.02)
        }
    }
}
