import Testing
import PromText
import MeshTesting

@Suite struct RealLinkerdScrape {
    let exposition: Exposition

    init() throws {
        exposition = try PromTextParser.parse(try fixture("linkerd/linkerd-proxy-metrics-linkerd2-prommatch-testdata.txt"))
    }

    @Test func everySampleLineIsRead() {
        // 199 sample lines in the file (every line that is not a comment or blank).
        #expect(exposition.samples.count == 199)
        #expect(exposition.families.count == 28)
    }

    @Test func familiesHaveTheirTypes() {
        #expect(exposition.families["request_total"]?.type == .counter)
        #expect(exposition.families["response_latency_ms"]?.type == .histogram)
        #expect(exposition.families["tcp_open_connections"]?.type == .gauge)
        #expect(exposition.type(ofSample: "response_latency_ms_bucket") == .histogram)
        #expect(exposition.families["request_total"]?.help == "Total count of HTTP requests.")
    }

    @Test func responseTotalHasLinkerdLabels() throws {
        let sample = try #require(exposition.samples.first { $0.name == "response_total" })
        #expect(sample[label: "direction"] == "inbound")
        #expect(sample[label: "classification"] == "success")
        #expect(sample[label: "status_code"] == "200")
        #expect(sample[label: "no_tls_reason"] == "no_tls_from_remote")
        #expect(sample.value == 29)
    }

    @Test func latencyBucketsAreLinkerds() {
        let bounds = exposition.samples.filter { $0.name == "response_latency_ms_bucket" }.compactMap { $0[label: "le"] }
        #expect(bounds == ["1", "2", "3", "4", "5", "10", "20", "30", "40", "50", "100", "200", "300", "400", "500",
                           "1000", "2000", "3000", "4000", "5000", "10000", "20000", "30000", "40000", "50000", "+Inf"])
    }

    @Test func outboundTcpCarriesDestinationLabels() throws {
        let sample = try #require(exposition.samples.first { $0.name == "tcp_open_connections" && $0[label: "peer"] == "dst" })
        #expect(sample[label: "dst_deployment"] == "opaque-pod")
        #expect(sample[label: "server_id"] == "default.linkerd-opaque-ports-test.serviceaccount.identity.linkerd.cluster.local")
        #expect(sample.value == 1)
    }

    @Test func unlabelledSamples() throws {
        let start = try #require(exposition.samples.first { $0.name == "process_start_time_seconds" })
        #expect(start.labels.isEmpty)
        #expect(start.value == 1650967123)
    }
}

@Suite struct TextFormat {
    @Test func escapesInLabelValues() throws {
        let e = try PromTextParser.parse(#"m{a="x\"y",b="back\\slash",c="new\nline"} 1"# + "\n")
        #expect(e.samples[0].labels == [Label("a", "x\"y"), Label("b", "back\\slash"), Label("c", "new\nline")])
    }

    @Test func specialValuesAndTimestamps() throws {
        let e = try PromTextParser.parse("a NaN\nb +Inf\nc -Inf 1700000000123\nd 1.5e3\ne -0.25\nf 12345678901234567890\n")
        #expect(e.samples[0].value.isNaN)
        #expect(e.samples[1].value == .infinity)
        #expect(e.samples[2].value == -.infinity)
        #expect(e.samples[2].timestampMs == 1_700_000_000_123)
        #expect(e.samples[3].value == 1500)
        #expect(e.samples[4].value == -0.25)
        #expect(e.samples[5].value == 12345678901234567890.0)
    }

    @Test func decimalsRoundLikeStrtod() throws {
        // Values that a naive digit-by-digit parser gets wrong in the last bit.
        for text in ["0.1", "0.3", "2.2250738585072014e-308", "1.7976931348623157e308", "123456.789e-3", "9007199254740993"] {
            let e = try PromTextParser.parse("m \(text)\n")
            #expect(e.samples[0].value == Double(text)!, "\(text)")
        }
    }

    @Test func emptyLabelSetTrailingCommaAndBlanks() throws {
        let e = try PromTextParser.parse("a{} 1\nb{x=\"1\",} 2\n\n  c\t{ y = \"2\" }\t3\r\n")
        #expect(e.samples.map(\.name) == ["a", "b", "c"])
        #expect(e.samples[1].labels == [Label("x", "1")])
        #expect(e.samples[2].labels == [Label("y", "2")])
        #expect(e.samples[2].value == 3)
    }

    @Test func openMetricsIsTolerated() throws {
        let text = """
        # TYPE foo counter
        # UNIT foo seconds
        foo_total 17.0 1520879607.789 # {trace_id="KOO5S4vxi0o"} 0.67
        foo_created 1520872607.123
        # TYPE bar unknown
        bar 1
        # EOF
        this is not parsed
        """
        let e = try PromTextParser.parse(text)
        #expect(e.samples.count == 3)
        #expect(e.samples[0].timestampMs == 1_520_879_607_789)
        #expect(e.families["bar"]?.type == .unknown)
    }

    @Test func veryLongLine() throws {
        let value = String(repeating: "x", count: 200_000)
        let e = try PromTextParser.parse("m{l=\"\(value)\"} 1\n")
        #expect(e.samples[0][label: "l"]?.count == 200_000)
    }

    @Test(arguments: [
        ("m{a=\"1\" 1\n", 1, 9, "expected ',' or '}'"),
        ("ok 1\nm{a=1} 1\n", 2, 5, "expected '\"'"),
        ("m 1x\n", 1, 3, "is not a number"),
        ("m\n", 1, 2, "expected a space before the value"),
        ("1m 1\n", 1, 1, "expected a metric name"),
        ("m{a=\"unterminated} 1\n", 1, 5, "not closed"),
        ("# TYPE m countre\n", 1, 10, "unknown metric type"),
        ("m 1 2 3\n", 1, 7, "expected the end of the line"),
        ("m{é=\"1\"} 1\n", 1, 3, "expected a label name"),
    ])
    func errorsNameLineAndColumn(input: String, line: Int, column: Int, message: String) {
        #expect {
            try PromTextParser.parse(input)
        } throws: { error in
            guard let e = error as? ParseError else { return false }
            return e.line == line && e.column == column && e.message.contains(message)
        }
    }

    @Test func arbitraryBytesNeverTrap() {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("m{}=\",# \n\\1.eE+-NaInf_a\t".utf8) + [0xFF, 0xC3, 0x00]
        for _ in 0..<3000 {
            let bytes = (0..<Int.random(in: 0..<60, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }
            _ = try? PromTextParser.parse(bytes)
        }
    }

    @Test func writerRoundTrips() throws {
        let sample = Sample(name: "m", labels: [Label("a", "q\"uote\\\n")], value: 0.5, timestampMs: 42)
        let e = try PromTextParser.parse(PromTextWriter.line(sample))
        #expect(e.samples == [sample])
    }
}
