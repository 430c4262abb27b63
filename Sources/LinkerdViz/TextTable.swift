/// A table printed the way linkerd viz prints its tables (Go's tabwriter): key columns
/// left-aligned, metric columns right-aligned, three spaces between columns; a left-aligned last
/// column is padded to its width, as tabwriter pads it.
public struct TextTable: Sendable {
    public enum Alignment: Sendable { case left, right }

    public var headers: [String]
    public var alignments: [Alignment]
    /// Columns are at least this wide (linkerd top's fixed widths); 0 means as wide as their cells.
    public var minimumWidths: [Int]
    public var rows: [[String]] = []

    public init(headers: [String], alignments: [Alignment], minimumWidths: [Int] = []) {
        precondition(headers.count == alignments.count, "one alignment per column")
        self.headers = headers
        self.alignments = alignments
        self.minimumWidths = minimumWidths
    }

    public mutating func append(_ row: [String]) {
        rows.append(row)
    }

    /// The rendered table, one line per row after the header, each ending in a newline.
    public func render(gap: Int = 3) -> String {
        let all = [headers] + rows
        var widths = (0..<headers.count).map { $0 < minimumWidths.count ? minimumWidths[$0] : 0 }
        for row in all {
            for (i, cell) in row.enumerated() where i < widths.count {
                widths[i] = max(widths[i], cell.displayWidth)
            }
        }
        var out = ""
        for row in all {
            var line = ""
            for i in headers.indices {
                let cell = i < row.count ? row[i] : ""
                let pad = String(repeating: " ", count: widths[i] - cell.displayWidth)
                if i > 0 { line += String(repeating: " ", count: gap) }
                line += alignments[i] == .left ? cell + pad : pad + cell
            }
            out += line + "\n"
        }
        return out
    }
}

extension String {
    /// Columns the string takes in a terminal: one per character (wide characters are not used in tables).
    var displayWidth: Int { unicodeScalars.count }
}
