/// A column of a table widget.
public struct Column: Sendable {
    public enum Alignment: Sendable { case left, right }
    public var title: String
    public var alignment: Alignment
    /// Cells longer than this are cut with an ellipsis (nil: no limit).
    public var maxWidth: Int?

    public init(_ title: String, _ alignment: Alignment = .right, maxWidth: Int? = nil) {
        self.title = title
        self.alignment = alignment
        self.maxWidth = maxWidth
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
    /// its widest cell, two spaces apart; columns that do not fit are left out from the right.
    /// Returns the number of data rows drawn.
    @discardableResult
    public mutating func drawTable(_ columns: [Column], rows: [[TableCell]], y: Int, maxRows: Int, selected: Int? = nil) -> Int {
        let rows = rows.map { row in
            row.enumerated().map { i, cell -> TableCell in
                guard i < columns.count, let limit = columns[i].maxWidth, cell.text.unicodeScalars.count > limit, limit > 1 else { return cell }
                var cut = TableCell(String(String.UnicodeScalarView(cell.text.unicodeScalars.prefix(limit - 1))), cell.style)
                cut.text += unicode ? "…" : "~"
                return cut
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
