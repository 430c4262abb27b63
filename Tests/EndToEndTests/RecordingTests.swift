import MeshMetrics
import Foundation
import Testing
import Dashboard
import MeshSources
import PromText
import MeshTesting

@Suite struct Recordings {
    func temporaryPath(_ name: String = "test") -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString).meshrec").path
    }

    func scrape(_ t: Int64, _ body: String?) -> ScrapeResult {
        let target = ScrapeTarget(url: "http://127.0.0.1:4191/metrics", labels: [Label("deployment", "web"), Label("namespace", "ns")])
        return ScrapeResult(target: target, startedMs: t, durationSeconds: 0, body: body.map { Array($0.utf8) }, error: body == nil ? "connection refused" : nil)
    }

    @Test func readsAnyJSONEscapesAndNumberLabels() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let lines = [
            #"{"meshrec":1,"started":1700000000}"#,
            #"{"t":1700000001.5,"scrape":{"target":"h:1","labels":{"pod":"p\u00e9\ud83d\ude00","replica":3},"body":"a{x=\"\\\/\"} 1\n\tb 2\n"}}"#,
            #" { "scrape" : { "error" : "refused" , "target" : "h:1" } , "t" : 1700000002 } "#,
        ]
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let events = try RecordingReader(path: path).readAll()
        guard events.count == 2, case .scrape(let a) = events[0], case .scrape(let b) = events[1] else {
            Issue.record("expected two scrapes, got \(events)")
            return
        }
        #expect(a.startedMs == 1_700_000_001_500 && b.startedMs == 1_700_000_002_000)
        #expect(a.target.labels == [Label("pod", "pé😀"), Label("replica", "3")])
        #expect(a.body.map { String(decoding: $0, as: UTF8.self) } == "a{x=\"\\/\"} 1\n\tb 2\n")
        #expect(b.error == "refused" && b.body == nil)
        // The span pass reads only each line's start, and agrees.
        let span = try RecordingReader(path: path)
        #expect(try span.nextTime() == 1_700_000_001_500)
        #expect(try span.nextTime() == 1_700_000_002_000)
        #expect(try span.nextTime() == nil)
    }

    /// Found by scripts/fuzz (meshrec): a time too large for milliseconds trapped on conversion.
    @Test func absurdTimesAreErrorsNotCrashes() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try #"{"meshrec":1,"started":170000001700000000}"#.write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: RecordingError.self) { try RecordingReader(path: path) }
        try "{\"meshrec\":1,\"started\":1700000000}\n{\"t\":1e300,\"scrape\":{\"target\":\"h:1\",\"error\":\"x\"}}\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: RecordingError.self) { try RecordingReader(path: path).readAll() }
        #expect(throws: RecordingError.self) { try RecordingReader(path: path).nextTime() }
        // The fuzzer's own input, kept in Fuzz/corpus/meshrec.
        let found = repositoryRoot.appendingPathComponent("Fuzz/corpus/meshrec/regression-huge-started").path
        #expect(throws: RecordingError.self) { try RecordingReader(path: found) }
        // The same numbers as flags are input errors too.
        #expect(TimeSpec.milliseconds("1e30", startMs: 0, endMs: 1) == nil)
        #expect(DurationText.milliseconds("99999999999999999999999h") == nil)
        #expect(DurationText.milliseconds("90m") == 5_400_000)
    }

    @Test func roundTripKeepsBodiesErrorsLabelsAndTimes() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try RecordingWriter(path: path, startedMs: 1_700_000_000_250, meta: ["source": "test"])
        let body = "response_total{direction=\"inbound\",classification=\"success\"} 3\n# quotes \" and \\ and\ttabs\n"
        try writer.append([scrape(1_700_000_000_500, body), scrape(1_700_000_001_500, nil)])
        let reader = try RecordingReader(path: path)
        #expect(reader.header.startedMs == 1_700_000_000_250)
        #expect(reader.header.meta == ["source": "test"])
        let events = try reader.readAll()
        #expect(events.count == 2)
        guard case .scrape(let first) = events[0], case .scrape(let second) = events[1] else {
            Issue.record("expected two scrape events")
            return
        }
        #expect(first.startedMs == 1_700_000_000_500)
        #expect(first.body.map { String(decoding: $0, as: UTF8.self) } == body)
        #expect(first.target.labels == [Label("deployment", "web"), Label("namespace", "ns")])
        #expect(first.target.instance == "127.0.0.1:4191")
        #expect(second.body == nil && second.error == "connection refused")
    }

    @Test func aTruncatedLastLineIsSkippedWithAWarning() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try RecordingWriter(path: path, startedMs: 0, meta: [:])
        try writer.append([scrape(1_000, "m 1\n"), scrape(2_000, "m 2\n")])
        // Cut the file in the middle of its last line, as a crash mid-write would.
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        data.removeLast(12)
        try data.write(to: URL(fileURLWithPath: path))
        let reader = try RecordingReader(path: path)
        let events = try reader.readAll()
        #expect(events.count == 1)
        #expect(reader.warnings.count == 1)
        #expect(reader.warnings.first?.contains(":3: the last line is cut short") == true)
    }

    @Test func gzipRecordingsRoundTripAndACutFileReplaysUpToTheCut() throws {
        let path = temporaryPath() + ".gz"
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            let writer = try RecordingWriter(path: path, startedMs: 0, meta: ["source": "test"])
            for i in 0..<50 { try writer.append([scrape(Int64(i) * 1000, String(repeating: "m{a=\"b\"} \(i)\n", count: 50))]) }
        }  // the writer finishes the gzip stream when it goes away
        let all = try RecordingReader(path: path).readAll()
        #expect(all.count == 50)
        let raw = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(raw.prefix(2) == Data([0x1F, 0x8B]))
        // A crash leaves no gzip trailer and maybe half a block: everything flushed before reads.
        try raw.prefix(raw.count * 2 / 3).write(to: URL(fileURLWithPath: path))
        let reader = try RecordingReader(path: path)
        let some = try reader.readAll()
        #expect(some.count > 10 && some.count < 50, "\(some.count) events from the cut file")
    }

    @Test func aMalformedLineIsAnErrorNamingIt() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try """
        {"meshrec":1,"started":1,"meta":{}}
        {"t":1,"scrape":{"target":"a:1","labels":{},"body":"m 1\\n"}}
        {"t":2,"scrape":{"target":"a:1","labels":{}}}
        {"t":3,"scrape":{"target":"a:1","labels":{},"body":"m 3\\n"}}

        """.write(toFile: path, atomically: true, encoding: .utf8)
        let reader = try RecordingReader(path: path)
        #expect(throws: RecordingError.self) { try reader.readAll() }
        do {
            _ = try RecordingReader(path: path).readAll()
        } catch {
            #expect(error.description.hasSuffix(":3: a scrape event needs a \"body\" or an \"error\""))
        }
    }

    @Test func notARecordingAtAll() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "request_total 1\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: RecordingError.self) { try RecordingReader(path: path) }
        #expect(throws: RecordingError.self) { try RecordingReader(path: path + ".missing") }
    }

    @Test func garbageNeverTraps() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("{}[]\":,tscrapebodyerrorlabels0123456789.\n meshrec".utf8) + [0xFF, 0x00]
        for _ in 0..<300 {
            var bytes = Array("{\"meshrec\":1,\"started\":1}\n".utf8)
            bytes += (0..<Int.random(in: 0..<200, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            if let reader = try? RecordingReader(path: path) {
                var collector = Collector()
                try? collector.replay(reader)
            }
        }
    }

    @Test func replayEqualsWhatWasLive() throws {
        // What the live collector computed at a moment is what a replay computes at that moment.
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try RecordingWriter(path: path, startedMs: 0, meta: [:])
        var live = Collector()
        for i in 0..<12 {
            let t = Int64(i) * 1_000 + Int64(i % 3) * 7
            let body = """
            response_total{direction="inbound",classification="success"} \(i * 9)
            response_total{direction="inbound",classification="failure"} \(i)
            response_latency_ms_bucket{direction="inbound",le="10"} \(i * 6)
            response_latency_ms_bucket{direction="inbound",le="+Inf"} \(i * 10)

            """
            let round = [scrape(t, body)]
            live.ingest(round)
            try writer.append(round)
        }
        var replayed = Collector()
        try replayed.replay(try RecordingReader(path: path))
        let a = live.stat(kindLabel: "deployment", namespace: "ns", windowMs: 60_000)
        let b = replayed.stat(kindLabel: "deployment", namespace: "ns", windowMs: 60_000)
        #expect(a == b)
        #expect(a.first?.success == 0.9)
    }
}
