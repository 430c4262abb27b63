/// A column of a table widget.
public struct Column: Sendable {
    public enum Alignment: Sendable { case left, right }
    public var title: String
    public var alignment: Alignment
    /// Cells longer than this are cut with an ellipsis (nil: no limit).
    public var maxWidth: Int?
    /// Where a cell too long is cut: at its end, or in its middle (paths, names and URLs, whose
    /// ends are what differ between rows).
    public var cut: Cut

    public enum Cut: Sendable {
        case end, middle
        /// Keeps where a cell first differs from the others in its column (paths that share a
        /// long start: `GET /api/vote?choice=…`), with its start: `GET /ap…choice=:ghost:&…`.
        case distinct
    }

    public init(_ title: String, _ alignment: Alignment = .right, maxWidth: Int? = nil, cut: Cut = .end) {
        self.title = title
        self.alignment = alignment
        self.maxWidth = maxWidth
        self.cut = cut
    }
}

extension Column.Cut {
    /// `text` in at most `limit` columns, keeping the place where it first differs from the
    /// texts in `others` in view (a middle cut when that place already shows in one).
    public static func distinct(_ text: String, among others: [String], to limit: Int, unicode: Bool) -> String {
        let scalars = Array(text.unicodeScalars)
        guard scalars.count > limit, limit > 4 else { return Column.Cut.middle.shorten(text, to: limit, unicode: unicode) }
        var differs = 0
        for other in others where other != text {
            var i = 0
            for (a, b) in zip(scalars, other.unicodeScalars) { if a != b { break }; i += 1 }
            differs = max(differs, i)
        }
        let tail = (limit - 1) / 2 + (limit - 1) % 2, head = limit - 1 - tail
        if differs < head || differs >= scalars.count - tail { return Column.Cut.middle.shorten(text, to: limit, unicode: unicode) }
        let mark: Unicode.Scalar = unicode ? "…" : "~"
        let keep = min(head, max(1, limit / 3))
        let start = max(keep, differs - 2)
        var room = limit - keep - 1
        var out = String.UnicodeScalarView(scalars[0..<keep])
        out.append(mark)
        let rest = scalars.count - start
        if rest > room {
            room -= 1
            out.append(contentsOf: scalars[start..<(start + room)])
            out.append(mark)
        } else {
            out.append(contentsOf: scalars[start...])
        }
        return String(out)
    }

    /// `text` in at most `limit` columns: whole when it fits, else cut here with `…` (`~` in ASCII).
    public func shorten(_ text: String, to limit: Int, unicode: Bool) -> String {
        let scalars = text.unicodeScalars
        guard scalars.count > limit, limit > 1 else { return text }
        let mark = unicode ? "…" : "~"
        switch self {
        case .end:
            return String(String.UnicodeScalarView(scalars.prefix(limit - 1))) + mark
        case .middle, .distinct:
            let tail = (limit - 1) / 2 + (limit - 1) % 2, head = limit - 1 - tail
            return String(String.UnicodeScalarView(scalars.prefix(head))) + mark + String(String.UnicodeScalarView(scalars.suffix(tail)))
        }
    }
}

/// A table cell's text and style.
public struct TableCell: Sendable {
    public var text: String
    public var style: Style

    public init(_ text: String, _ style: Style = .plain) {
        self.text = text
        self.style = style
    }
}

extension Screen {
    /// Draws a table from row `y`: a bold header, then the rows that fit, each column as wide as
    /// its widest cell, two spaces apart; columns that do not fit are left out from the right,
    /// except a last left-aligned column (a message), which is cut to the room left.
    /// Returns the number of data rows drawn.
    @discardableResult
    public mutating func drawTable(_ columns: [Column], rows: [[TableCell]], y: Int, maxRows: Int, selected: Int? = nil) -> Int {
        let distinctColumns = Dictionary(uniqueKeysWithValues: columns.indices.filter { columns[$0].cut == .distinct }.map { i in
            (i, rows.compactMap { i < $0.count ? $0[i].text : nil })
        })
        var rows = rows.map { row in
            row.enumerated().map { i, cell -> TableCell in
                guard i < columns.count, let limit = columns[i].maxWidth else { return cell }
                if let others = distinctColumns[i] {
                    return TableCell(Column.Cut.distinct(cell.text, among: others, to: limit, unicode: unicode), cell.style)
                }
                return TableCell(columns[i].cut.shorten(cell.text, to: limit, unicode: unicode), cell.style)
            }
        }
        var widths = columns.map { $0.title.unicodeScalars.count }
        for row in rows {
            for (i, cell) in row.enumerated() where i < widths.count {
                widths[i] = max(widths[i], cell.text.unicodeScalars.count)
            }
        }
        var x = 0
        var visible = 0
        for w in widths {
            if x + w > width { break }
            x += w + 2
            visible += 1
        }
        if visible == columns.count - 1, let last = columns.last, last.alignment == .left,
           width - x >= max(8, last.title.unicodeScalars.count) {
            let room = width - x
            widths[visible] = room
            for r in rows.indices where visible < rows[r].count {
                rows[r][visible].text = last.cut.shorten(rows[r][visible].text, to: room, unicode: unicode)
            }
            visible += 1
        }
        func drawRow(_ cells: [TableCell], at row: Int, rowStyle: Style?) {
            if let rowStyle { fill(row: row, style: rowStyle) }
            var col = 0
            for i in 0..<visible {
                let cell = i < cells.count ? cells[i] : TableCell("")
                let pad = widths[i] - cell.text.unicodeScalars.count
                let start = columns[i].alignment == .left ? col : col + pad
                var style = cell.style
                if let rowStyle { style.reverse = rowStyle.reverse }
                put(cell.text, x: start, y: row, style: style)
                col += widths[i] + 2
            }
        }
        drawRow(columns.map { TableCell($0.title, Style(.header, bold: true)) }, at: y, rowStyle: nil)
        let count = min(rows.count, max(0, maxRows))
        for i in 0..<count {
            drawRow(rows[i], at: y + 1 + i, rowStyle: selected == i ? Style(.selection, reverse: true) : nil)
        }
        return count
    }
}
