/// What the dashboard draws on and reads keys from: the real terminal (`NcursesTerminal`, in
/// TerminalNcurses), or a headless one in tests (MeshTesting's `HeadlessTerminal`).
public protocol TerminalBackend: AnyObject {
    /// The size in columns and rows.
    var size: (width: Int, height: Int) { get }
    /// Whether box-drawing and block characters can be drawn (else ASCII stand-ins).
    var unicode: Bool { get }
    /// Shows `screen`, writing only what changed since the last frame.
    func draw(_ screen: Screen)
    /// Forgets what is on the terminal: the next `draw` writes every cell (after a resize, Ctrl-L).
    func invalidate()
    /// The next key, waiting at most `timeoutMs`; nil when none came.
    func readKey(timeoutMs: Int) -> Key?
}

/// The terminal could not be used.
public struct TerminalError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
