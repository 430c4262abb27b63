import Foundation
import Synchronization

/// Set by SIGINT or SIGTERM, so long-running commands finish cleanly instead of dying mid-write.
public final class StopFlag {
    private final class Flag: Sendable {
        let value = Atomic<Bool>(false)
    }

    private let flag = Flag()
    private var sources: [any DispatchSourceSignal] = []

    public var isSet: Bool { flag.value.load(ordering: .relaxed) }

    public static func install() -> StopFlag {
        let stop = StopFlag()
        let flag = stop.flag
        stop.sources = [SIGINT, SIGTERM].map { sig in
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { flag.value.store(true, ordering: .relaxed) }
            source.resume()
            return source
        }
        return stop
    }
}
