/// A key press, decoded.
public enum Key: Equatable, Sendable {
    case character(Character)
    case up, down, left, right, pageUp, pageDown, home, end
    case enter, escape, tab, backTab, backspace
    case control(Character)
    /// The terminal changed size.
    case resize
}
