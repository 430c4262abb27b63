public import Foundation

/// Waits until `condition` holds, checking every `pollMs`, for at most `seconds`; returns whether
/// it held. The one place tests wait on the wall clock: for real processes, sockets and servers,
/// which no test clock drives. (Code with a clock of its own is tested on `ManualClock`.)
@discardableResult
public func eventually(within seconds: Double = 10, pollMs: Int = 20, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while true {
        if try condition() { return true }
        if Date() >= deadline { return false }
        Thread.sleep(forTimeInterval: Double(pollMs) / 1000)
    }
}

/// `eventually` for conditions that await.
@discardableResult
public func eventuallyAwaiting(within seconds: Double = 10, pollMs: Int = 20, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while true {
        if try await condition() { return true }
        if Date() >= deadline { return false }
        try? await Task.sleep(nanoseconds: UInt64(pollMs) * 1_000_000)
    }
}

/// Waits for `process` to exit, terminating it after `seconds`; its exit status.
@discardableResult
public func waitForExit(_ process: Process, within seconds: Double) -> Int32 {
    if !eventually(within: seconds, pollMs: 50, { !process.isRunning }) { process.terminate() }
    process.waitUntilExit()
    return process.terminationStatus
}
