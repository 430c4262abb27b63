import Testing
@testable import PromText

/// The scrape cache's line reader: the series text as written (hashed) and the value, or "parse
/// this in full" whenever a line is not that simple.
@Suite struct SeriesLinesTests {
    func scan(_ text: String) -> (ok: Bool, lines: [(UInt64, Double)]) {
        var lines: [(UInt64, Double)] = []
        let ok = Array(text.utf8).withUnsafeBytes { SeriesLines.scan($0) { h, v in lines.append((h, v)); return true } }
        return (ok, lines)
    }

    @Test func readsValuesAndSkipsComments() {
        let r = scan("# HELP a A.\n# TYPE a counter\na 1\n\nb{x=\"1\"} 2.5\r\n  c{y=\"} 3\"}\t-Inf\nd{} NaN\n# EOF\ne 9\n")
        #expect(r.ok)
        #expect(r.lines.map(\.1).prefix(3) == [1, 2.5, -.infinity])
        #expect(r.lines.count == 4 && r.lines[3].1.isNaN)
    }

    @Test func theSameSeriesTextHashesTheSameAndAnyChangeDiffers() {
        let a = scan("m{a=\"1\",b=\"two\"} 1\nm{a=\"1\",b=\"two\"} 7\nm{a=\"1\",b=\"twO\"} 1\nm{b=\"two\",a=\"1\"} 1\nm 1\n").lines.map(\.0)
        #expect(a[0] == a[1])
        #expect(Set(a).count == 4, "a changed letter, a changed order and no labels are all different series text")
    }

    @Test(arguments: [
        "m{a=\"1\"} 1 1700000000000\n",   // a timestamp: the full parse keeps it
        "m{a=\"1\"} 1 # {t=\"x\"} 1\n",    // an exemplar
        "m{a=\"1\"} one\n",                // not a number
        "m{a=\"1\"}\n",                    // no value
        "m{a=\"1\" 1\n",                   // no closing brace
    ])
    func anythingElseAsksForTheFullParse(text: String) {
        #expect(!scan(text).ok)
    }
}
