/// A colour as a theme names it.
public enum ThemeColor: Sendable, Equatable {
    /// The terminal's own foreground or background.
    case terminalDefault
    /// One of the 16 ANSI colours (0-7 normal, 8-15 bright).
    case ansi(Int)
    /// A 24-bit colour, shown as the nearest the terminal has.
    case rgb(UInt8, UInt8, UInt8)

    /// Parses `default`, an ANSI name (`red`, `brightcyan`), `#rrggbb`, or a number 0-255.
    public init?(_ text: String) {
        let t = text.lowercased().trimmingCharacters(in: " ")
        if t == "default" || t.isEmpty { self = .terminalDefault; return }
        let names = ["black", "red", "green", "yellow", "blue", "magenta", "cyan", "white"]
        if let i = names.firstIndex(of: t) { self = .ansi(i); return }
        if t.hasPrefix("bright"), let i = names.firstIndex(of: String(t.dropFirst(6))) { self = .ansi(i + 8); return }
        if t.hasPrefix("#"), t.count == 7, let v = UInt32(t.dropFirst(), radix: 16) {
            self = .rgb(UInt8(v >> 16 & 255), UInt8(v >> 8 & 255), UInt8(v & 255))
            return
        }
        if let n = Int(t), (0...255).contains(n) {
            if n < 16 { self = .ansi(n); return }
            self = .rgb(ThemeColor.xterm256[n].0, ThemeColor.xterm256[n].1, ThemeColor.xterm256[n].2)
            return
        }
        return nil
    }

    /// The colour number to use on a terminal with `colors` colours (-1 for the default).
    public func index(colors: Int) -> Int {
        switch self {
        case .terminalDefault: return -1
        case .ansi(let n): return colors >= 16 ? n : n % 8
        case let .rgb(r, g, b):
            let candidates = colors >= 256 ? 256 : (colors >= 16 ? 16 : 8)
            var best = 0
            var bestDistance = Int.max
            for i in 0..<candidates {
                let c = ThemeColor.xterm256[i]
                // Weighted distance (red 3, green 4, blue 2): cheap and close to perceived difference.
                let dr = Int(c.0) - Int(r), dg = Int(c.1) - Int(g), db = Int(c.2) - Int(b)
                let d = 3 * dr * dr + 4 * dg * dg + 2 * db * db
                if d < bestDistance { bestDistance = d; best = i }
            }
            return best
        }
    }

    /// The xterm 256-colour palette: 16 ANSI colours, a 6×6×6 cube, 24 greys.
    static let xterm256: [(UInt8, UInt8, UInt8)] = {
        var p: [(UInt8, UInt8, UInt8)] = [
            (0, 0, 0), (205, 0, 0), (0, 205, 0), (205, 205, 0), (0, 0, 238), (205, 0, 205), (0, 205, 205), (229, 229, 229),
            (127, 127, 127), (255, 0, 0), (0, 255, 0), (255, 255, 0), (92, 92, 255), (255, 0, 255), (0, 255, 255), (255, 255, 255),
        ]
        let steps: [UInt8] = [0, 95, 135, 175, 215, 255]
        for r in steps { for g in steps { for b in steps { p.append((r, g, b)) } } }
        for i in 0..<24 { let v = UInt8(8 + 10 * i); p.append((v, v, v)) }
        return p
    }()
}

/// How one role is drawn.
public struct RoleStyle: Sendable, Equatable {
    public var foreground: ThemeColor
    public var background: ThemeColor
    public var bold: Bool
    public var dim: Bool
    public var underline: Bool

    public init(foreground: ThemeColor = .terminalDefault, background: ThemeColor = .terminalDefault,
                bold: Bool = false, dim: Bool = false, underline: Bool = false) {
        self.foreground = foreground
        self.background = background
        self.bold = bold
        self.dim = dim
        self.underline = underline
    }
}

/// Colours and attributes per semantic role. Views name roles (`good`, `bad`, `header` …);
/// a theme decides how each looks.
public struct Theme: Sendable, Equatable {
    public var name: String
    public var styles: [Role: RoleStyle]
    /// No colours at all: roles are told apart by attributes only (bold, reverse, dim).
    public var monochrome: Bool

    public init(name: String, styles: [Role: RoleStyle], monochrome: Bool = false) {
        self.name = name
        self.styles = styles
        self.monochrome = monochrome
    }

    public func style(_ role: Role) -> RoleStyle { styles[role] ?? RoleStyle() }

    /// The built-in dark theme, used when no theme file is given or a theme file is bad.
    public static let defaultDark = Theme(name: "default-dark", styles: [
        .text: RoleStyle(),
        .muted: RoleStyle(foreground: .rgb(0x8a, 0x8a, 0x8a)),
        .header: RoleStyle(foreground: .rgb(0x5f, 0xaf, 0xff), bold: true),
        .border: RoleStyle(foreground: .rgb(0x58, 0x58, 0x58)),
        .selection: RoleStyle(foreground: .rgb(0x00, 0x00, 0x00), background: .rgb(0x5f, 0xaf, 0xff)),
        .good: RoleStyle(foreground: .rgb(0x5f, 0xd7, 0x5f)),
        .warn: RoleStyle(foreground: .rgb(0xff, 0xd7, 0x5f)),
        .bad: RoleStyle(foreground: .rgb(0xff, 0x5f, 0x5f), bold: true),
        .accent: RoleStyle(foreground: .rgb(0xaf, 0x87, 0xff)),
    ])

    /// Attributes only, for `NO_COLOR`, `--no-color` and terminals without colour.
    public static let monochromeTheme = Theme(name: "monochrome", styles: [
        .muted: RoleStyle(dim: true), .header: RoleStyle(bold: true), .bad: RoleStyle(bold: true),
        .warn: RoleStyle(underline: true), .accent: RoleStyle(), .good: RoleStyle(),
    ], monochrome: true)
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return String(s)
    }
}
