/// What a cell means, which a theme turns into colours (or, without colour, into attributes).
public enum Role: UInt8, Sendable, CaseIterable {
    case text, muted, header, border, selection, good, warn, bad, accent
}

/// How a cell is drawn: its role and attributes. Meaning never rests on colour alone: views
/// also write symbols or words, and bold/reverse carry emphasis on monochrome terminals.
public struct Style: Hashable, Sendable {
    public var role: Role
    public var bold: Bool
    public var reverse: Bool
    public var underline: Bool

    public init(_ role: Role = .text, bold: Bool = false, reverse: Bool = false, underline: Bool = false) {
        self.role = role
        self.bold = bold
        self.reverse = reverse
        self.underline = underline
    }

    public static let plain = Style()
}

public struct Cell: Equatable, Sendable {
    public var scalar: Unicode.Scalar
    public var style: Style

    public init(_ scalar: Unicode.Scalar = " ", _ style: Style = .plain) {
        self.scalar = scalar
        self.style = style
    }
}

/// A grid of cells: what views draw into and backends put on a terminal. Pure value, so a
/// frame can be compared, diffed, or printed as text in a test.
public struct Screen: Equatable, Sendable {
    public let width: Int
    public let height: Int
    public private(set) var cells: [Cell]
    /// Whether box drawing and other non-ASCII symbols may be used (false under `LANG=C`).
    public var unicode: Bool

    public init(width: Int, height: Int, unicode: Bool = true) {
        self.width = max(0, width)
        self.height = max(0, height)
        self.cells = Array(repeating: Cell(), count: self.width * self.height)
        self.unicode = unicode
    }

    public subscript(x: Int, y: Int) -> Cell {
        get { cells[y * width + x] }
        set {
            guard x >= 0, y >= 0, x < width, y < height else { return }
            cells[y * width + x] = newValue
        }
    }

    /// Writes `text` from (x, y), clipped at `maxWidth` columns and at the right edge; returns
    /// the column after the last one written. Characters outside ASCII become `?` when the
    /// screen is not Unicode.
    @discardableResult
    public mutating func put(_ text: String, x: Int, y: Int, style: Style = .plain, maxWidth: Int? = nil) -> Int {
        guard y >= 0, y < height else { return x }
        let limit = min(width, x + (maxWidth ?? width))
        var col = x
        for scalar in text.unicodeScalars {
            guard col < limit else { break }
            if col >= 0 {
                let s = unicode || scalar.isASCII ? scalar : "?"
                cells[y * width + col] = Cell(s, style)
            }
            col += 1
        }
        return col
    }

    /// Fills a row from x to the right edge with `style` (for bars and highlighted rows).
    public mutating func fill(row y: Int, from x: Int = 0, style: Style) {
        guard y >= 0, y < height else { return }
        for col in max(0, x)..<width { cells[y * width + col].style = style }
    }

    /// The screen as plain text, one line per row, trailing blanks trimmed: what a golden test
    /// compares and what `tmux capture-pane` shows.
    public var text: String {
        var lines: [String] = []
        for y in 0..<height {
            var line = ""
            line.unicodeScalars.append(contentsOf: cells[(y * width)..<((y + 1) * width)].map(\.scalar))
            while line.last == " " { line.removeLast() }
            lines.append(line)
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
