public import TerminalUI

/// A terminal with no tty behind it, for testing the dashboard's loop: keys come from a script,
/// each at a moment on a `ManualClock`, and every frame drawn is kept as text. Waiting for a key
/// moves the clock instead of sleeping, so a loop test runs in microseconds and the same way on
/// a busy machine.
public final class HeadlessTerminal: TerminalBackend {
    public var size: (width: Int, height: Int)
    public let unicode: Bool
    /// Every frame drawn, as text (one line per row), oldest first.
    public private(set) var frames: [String] = []
    /// How many times the loop asked for a full repaint.
    public private(set) var invalidations = 0
    /// The clock time of every `readKey` that returned a key, with the key.
    public private(set) var delivered: [(atMs: Int64, key: Key)] = []
    private var script: [(atMs: Int64, key: Key)] = []
    private let clock: ManualClock

    public init(width: Int = 80, height: Int = 24, unicode: Bool = true, clock: ManualClock) {
        size = (width, height)
        self.unicode = unicode
        self.clock = clock
    }

    /// Scripts `key` to arrive `afterMs` after the previous scripted key (or after now, for the first).
    public func press(_ key: Key, afterMs: Int64 = 0) {
        let base = script.last?.atMs ?? clock.nowMs()
        script.append((base + afterMs, key))
    }

    /// Scripts each character of `text` as a key, `afterMs` apart.
    public func type(_ text: String, afterMs: Int64 = 0) {
        for c in text { press(.character(c), afterMs: afterMs) }
    }

    /// The last frame drawn ("" before the first).
    public var screen: String { frames.last ?? "" }

    public func draw(_ screen: Screen) { frames.append(screen.text) }

    public func invalidate() { invalidations += 1 }

    /// The next scripted key if it is due within `timeoutMs`: the clock moves to its moment.
    /// Otherwise the whole timeout passes on the clock and there is no key.
    public func readKey(timeoutMs: Int) -> Key? {
        let now = clock.nowMs()
        if let next = script.first, next.atMs <= now + Int64(timeoutMs) {
            script.removeFirst()
            if next.atMs > now { clock.advance(byMs: next.atMs - now) }
            delivered.append((clock.nowMs(), next.key))
            return next.key
        }
        clock.advance(byMs: Int64(timeoutMs))
        return nil
    }
}
