import CNcurses
public import TerminalUI
#if canImport(Glibc)
import Glibc
#endif

/// The real terminal, through ncursesw: alternate screen, no echo, keypad on, a short escape
/// delay, the cursor hidden. Draws a `Screen` by writing only the cells that changed since the
/// last frame, so a steady dashboard costs almost nothing over SSH.
///
/// Restores the terminal on `close()`, at exit, on SIGINT, SIGTERM, SIGHUP and SIGQUIT, and on
/// crashes. SIGTSTP/SIGCONT (Ctrl-Z, fg) and SIGWINCH are ncurses' own: it leaves and re-enters
/// the screen, and a resize arrives as a key.
public final class NcursesTerminal: TerminalBackend {
    private var previous: Screen?
    public let unicode: Bool
    public let colors: Bool
    private var closed = false

    public let theme: Theme

    /// Opens the terminal. Fails when stdin or stdout is not a terminal. With `noColor` (or a
    /// terminal without colours) the monochrome theme is used whatever `theme` says.
    public init(noColor: Bool, theme: Theme = .defaultDark) throws(TerminalError) {
        guard isatty(STDIN_FILENO) == 1, isatty(STDOUT_FILENO) == 1 else {
            throw TerminalError("not a terminal: the dashboard needs one (use --headless to print instead)")
        }
        unicode = mt_setlocale_utf8() != 0
        setenv("ESCDELAY", "25", 0)
        guard initscr() != nil else { throw TerminalError("cannot initialise the terminal (is TERM set?)") }
        installRestoreHandlers()
        cbreak()
        noecho()
        nonl()
        keypad(mt_stdscr(), true)
        curs_set(0)
        set_escdelay(25)
        var useColor = !noColor && !theme.monochrome && has_colors()
        if useColor {
            start_color()
            use_default_colors()
            useColor = Self.definePairs(theme, colors: Int(mt_colors()))
        }
        colors = useColor
        self.theme = useColor ? theme : .monochromeTheme
    }

    deinit { close() }

    /// Leaves the alternate screen and restores the terminal's modes.
    public func close() {
        guard !closed else { return }
        closed = true
        endwin()
    }

    /// The terminal's size in columns and rows.
    public var size: (width: Int, height: Int) {
        (Int(mt_cols()), Int(mt_lines()))
    }

    /// Draws `screen`, writing only cells that differ from the last frame.
    public func draw(_ screen: Screen) {
        let full = previous == nil || previous!.width != screen.width || previous!.height != screen.height
        if full { erase() }
        for y in 0..<screen.height {
            for x in 0..<screen.width {
                let cell = screen[x, y]
                if !full, previous![x, y] == cell { continue }
                // The bottom-right cell scrolls some terminals when written: leave it.
                if y == screen.height - 1, x == screen.width - 1 { continue }
                mt_put(Int32(y), Int32(x), wchar_t(bitPattern: cell.scalar.value), attributes(cell.style), colors ? Int16(cell.style.role.rawValue + 1) : 0)
            }
        }
        previous = screen
        refresh()
    }

    /// Forgets what is on the terminal so the next `draw` repaints everything (Ctrl-L).
    public func invalidate() {
        previous = nil
        clearok(mt_stdscr(), true)
    }

    /// Waits up to `timeoutMs` for a key; nil when none came.
    public func readKey(timeoutMs: Int) -> Key? {
        wtimeout(mt_stdscr(), Int32(timeoutMs))
        var code: UInt32 = 0
        let rc = mt_get_wch(&code)
        if rc == mt_err() { return nil }
        if rc == mt_key_code_yes() {
            switch Int32(code) {
            case KEY_UP: return .up
            case KEY_DOWN: return .down
            case KEY_LEFT: return .left
            case KEY_RIGHT: return .right
            case KEY_NPAGE: return .pageDown
            case KEY_PPAGE: return .pageUp
            case KEY_HOME: return .home
            case KEY_END: return .end
            case KEY_ENTER: return .enter
            case KEY_BTAB: return .backTab
            case KEY_BACKSPACE: return .backspace
            case mt_key_resize(): return .resize
            default: return nil
            }
        }
        switch code {
        case 0x0D, 0x0A: return .enter
        case 0x1B: return .escape
        case 0x09: return .tab
        case 0x7F, 0x08: return .backspace
        case 0x01...0x1A: return .control(Character(Unicode.Scalar(code + 0x60)!))
        default:
            guard let scalar = Unicode.Scalar(code) else { return nil }
            return .character(Character(scalar))
        }
    }

    private func attributes(_ style: Style) -> Int32 {
        var a: Int32 = 0
        let role = theme.style(style.role)
        if style.bold || role.bold { a |= mt_a_bold() }
        if style.reverse { a |= mt_a_reverse() }
        if style.underline || role.underline { a |= mt_a_underline() }
        if role.dim { a |= mt_a_dim() }
        if !colors, style.role == .selection { a |= mt_a_reverse() }
        return a
    }

    /// One colour pair per role, mapped to what the terminal has (256, 16 or 8 colours).
    private static func definePairs(_ theme: Theme, colors: Int) -> Bool {
        for role in Role.allCases {
            let s = theme.style(role)
            let fg = Int16(s.foreground.index(colors: colors)), bg = Int16(s.background.index(colors: colors))
            if init_pair(Int16(role.rawValue + 1), fg, bg) == mt_err() { return false }
        }
        return true
    }
}

/// Restores the terminal if the process is told to stop, hangs up, or crashes (a Swift trap is
/// SIGILL or SIGTRAP) while the screen is up; the signal then takes its usual course.
private func installRestoreHandlers() {
    atexit { if isendwin() == false { endwin() } }
    for sig in [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT] {
        signal(sig) { received in
            endwin()
            signal(received, SIG_DFL)
            raise(received)
        }
    }
}
