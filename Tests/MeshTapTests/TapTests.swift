import Foundation
import Testing
import MeshTap
import MeshTesting

/// Decodes a whole stream as `linkerd viz tap -o json` prints it.
func decodeStream(_ text: String, chunk: Int = 7) -> (events: [TapEvent], garbage: [String]) {
    var decoder = TapStreamDecoder()
    var events: [TapEvent] = []
    var garbage: [String] = []
    let bytes = Array(text.utf8)
    var i = 0
    while i < bytes.count {
        for piece in decoder.feed(bytes[i..<min(bytes.count, i + chunk)]) {
            switch piece {
            case .object(let o):
                if case .success(let e) = TapJSON.decode(line: o) { events.append(e) } else { garbage.append(String(decoding: o, as: UTF8.self)) }
            case .garbage(_, let b): garbage.append(String(decoding: b, as: UTF8.self))
            case .oversized: garbage.append("<oversized>")
            }
        }
        i += chunk
    }
    for case .garbage(_, let b) in decoder.finish() { garbage.append(String(decoding: b, as: UTF8.self)) }
    return (events, garbage)
}

@Suite struct LinkerdTapFormats {
    @Test func jsonStreamDecodesAndPrintsLinkerdsTextLines() throws {
        let (events, garbage) = decodeStream(try fixture("linkerd/linkerd-viz-tap-golden-tap_busy_output_json.txt"))
        #expect(garbage.isEmpty)
        #expect(events.count == 2)
        let text = events.map { TapText.line($0) }.joined(separator: "\n") + "\n"
        #expect(text == (try fixture("linkerd/linkerd-viz-tap-golden-tap_busy_output.txt")))
        let wide = events.map { TapText.line($0, wide: true) }.joined(separator: "\n") + "\n"
        #expect(wide == (try fixture("linkerd/linkerd-viz-tap-golden-tap_busy_output_wide.txt")))
    }

    @Test func prettyJSONIsLinkerdsByteForByte() throws {
        let golden = try fixture("linkerd/linkerd-viz-tap-golden-tap_busy_output_json.txt")
        let (events, _) = decodeStream(golden)
        #expect(events.map { TapJSON.encode($0, pretty: true) }.joined(separator: "\n") + "\n" == golden)
    }

    @Test func compactLinesRoundTrip() throws {
        let (events, _) = decodeStream(try fixture("linkerd/linkerd-viz-tap-golden-tap_busy_output_json.txt"))
        for e in events {
            let line = TapJSON.encode(e)
            #expect(!line.contains("\n"))
            #expect(try TapJSON.decode(line: Array(line.utf8)).get() == e)
        }
    }

    @Test func wholeStreamAtOnceOrByteByByte() throws {
        let golden = try fixture("linkerd/linkerd-viz-tap-golden-tap_busy_output_json.txt")
        #expect(decodeStream(golden, chunk: 1).events == decodeStream(golden, chunk: 1 << 20).events)
    }

    @Test func garbageBetweenObjectsIsReportedNotGuessed() {
        let (events, garbage) = decodeStream("""
        {"source":{"ip":"1.2.3.4","port":1},"destination":{"ip":"5.6.7.8","port":2},"proxyDirection":"INBOUND","requestInitEvent":{"id":{"base":1,"stream":2},"method":"GET","scheme":"HTTP","authority":"a","path":"/{not a brace}"}}
        Error: something went wrong
        {"unrelated": true}
        {"source":{"ip":"1.2.3.4","port":1},"destination":{"ip":"5.6.7.8","port":2},"proxyDirection":"INBOUND","responseEndEvent":{"id":{"base":1,"stream":2},"sinceRequestInit":{"nanos":81000},"sinceResponseInit":{"nanos":5000},"responseBytes":3}}
        {"source": {"ip": "1.2.3.4", "port
        """)
        #expect(events.count == 2)
        if case let .requestInit(_, _, _, _, path, _) = events[0].http { #expect(path == "/{not a brace}") }
        #expect(garbage.contains("Error: something went wrong"))
        #expect(garbage.contains("{\"unrelated\": true}"))
    }

    @Test func queryValuesNamedLikeSecretsAreRedacted() {
        let r = TapRedaction()
        #expect(r.redactQuery("/a?access_token=x&page=2") == "/a?access_token=[REDACTED]&page=2")
        #expect(r.redactQuery("/a?API_KEY=x&Key=y&code=z&client_secret=w") == "/a?API_KEY=[REDACTED]&Key=[REDACTED]&code=[REDACTED]&client_secret=[REDACTED]")
        #expect(r.redactQuery("/a?acc%65ss%5Ftoken=x&q=session+id") == "/a?acc%65ss%5Ftoken=[REDACTED]&q=session+id", "names are read percent-decoded; values are not names")
        #expect(r.redactQuery("/a?page=2&sort=name&flag") == "/a?page=2&sort=name&flag")
        #expect(r.redactQuery("/a") == "/a" && r.redactQuery("/a?") == "/a?")
        #expect(r.redactQuery("/a?token") == "/a?token", "a name without a value carries no secret")
        let headers = [TapHeader(name: "X-Api-Key", value: "k"), TapHeader(name: "x-auth-token", value: "t"), TapHeader(name: "X-Vault-Token", value: "v"),
                       TapHeader(name: ":authority", value: "web"), TapHeader(name: "x-tenant", value: "acme")]
        #expect(r.redact(headers).map(\.value) == [redactedValue, redactedValue, redactedValue, "web", "acme"])
        #expect(TapRedaction(extraHeaders: ["X-Tenant"]).redact(headers).map(\.value).last == redactedValue)
    }

    @Test func credentialsAreRedacted() {
        let headers = [TapHeader(name: "Authorization", value: "Bearer s3cret"), TapHeader(name: "cookie", value: "id=1"),
                       TapHeader(name: "SET-COOKIE", value: "x"), TapHeader(name: "user-agent", value: "curl")]
        let r = redact(headers)
        #expect(r.map(\.value) == [redactedValue, redactedValue, redactedValue, "curl"])
        #expect(!r.contains { $0.value.contains("s3cret") })
    }
}

@Suite struct TopAggregation {
    func event(_ http: TapHTTPEvent, src: String = "10.0.0.1", dst: String = "10.0.0.2", dstPod: String? = "web-1") -> TapEvent {
        TapEvent(source: TapPeer(ip: src, port: 4000), destination: TapPeer(ip: dst, port: 80, metadata: dstPod.map { ["pod": $0] }),
                 direction: .inbound, http: http)
    }

    func request(_ n: UInt64, _ path: String, status: Int, ms: Int64, grpc: Int? = nil) -> [TapEvent] {
        let id = TapStreamID(base: 1, stream: n)
        return [event(.requestInit(id: id, method: "GET", scheme: "HTTP", authority: "web", path: path, headers: [])),
                event(.responseInit(id: id, sinceRequestInitNanos: ms * 500_000, httpStatus: status, headers: [])),
                event(.responseEnd(id: id, sinceRequestInitNanos: ms * 1_000_000, sinceResponseInitNanos: 1000, responseBytes: 10,
                                   grpcStatus: grpc, resetErrorCode: nil, trailers: []))]
    }

    @Test func aRequestSeenByBothProxiesCountsOnceAsTheClientsProxySawIt() {
        // vote-bot's outbound and web's inbound both see request 7 (the same l5d-tap-id), each
        // with its own stream ids, in whatever order their streams deliver them.
        func sight(_ direction: TapDirection, stream: UInt64, src: TapPeer) -> [TapEvent] {
            let id = TapStreamID(base: direction == .outbound ? 1 : 2, stream: stream)
            let dst = TapPeer(ip: "10.0.0.2", port: 80, metadata: ["pod": "web-1"])
            return [TapEvent(source: src, destination: dst, direction: direction,
                             http: .requestInit(id: id, method: "GET", scheme: "HTTP", authority: "web", path: "/x", headers: [TapHeader(name: "l5d-tap-id", value: "p.7")])),
                    TapEvent(source: src, destination: dst, direction: direction, http: .responseInit(id: id, sinceRequestInitNanos: 1000, httpStatus: 200, headers: [])),
                    TapEvent(source: src, destination: dst, direction: direction,
                             http: .responseEnd(id: id, sinceRequestInitNanos: 2000, sinceResponseInitNanos: 1000, responseBytes: 1, grpcStatus: nil, resetErrorCode: nil, trailers: []))]
        }
        let out = sight(.outbound, stream: 3, src: TapPeer(ip: "10.0.0.9", port: 4000, metadata: ["pod": "vote-bot-1"]))
        let inb = sight(.inbound, stream: 5, src: TapPeer(ip: "127.0.0.1", port: 50000))
        // The last order: the client's stream lags a whole request behind the server's.
        for order in [[out[0], inb[0], inb[1], inb[2], out[1], out[2]], [inb[0], out[0], inb[1], out[1], inb[2], out[2]], out + inb, inb + out] {
            var top = TopAggregator()
            for e in order { top.add(e) }
            top.finish()
            #expect(top.rows.count == 1 && top.rows.first?.count == 1, "\(top.rows)")
            #expect(top.rows.first?.source == "vote-bot-1")
            #expect(top.merged == 1 && top.unmatched == 0)
        }
        // Live, the inbound sight that finished first waits mergeGraceMs for its outbound sight:
        // within it, the outbound sight takes its place; past it, it is counted as it is.
        var live = TopAggregator()
        for (n, e) in inb.enumerated() { live.add(e, atMs: Int64(n)) }
        live.add(out[0], atMs: 900)
        #expect(live.rows.isEmpty)
        live.add(out[1], atMs: 950)
        live.add(out[2], atMs: 960)
        #expect(live.rows.map(\.source) == ["vote-bot-1"] && live.rows(since: 0).first?.count == 1)
        var lone = TopAggregator()
        for e in inb { lone.add(e, atMs: 100) }
        lone.release(atMs: 1_099)
        #expect(lone.rows.isEmpty)
        lone.release(atMs: 1_100)
        #expect(lone.rows.map(\.source) == ["127.0.0.1"] && lone.rows(since: 100).first?.count == 1)
        lone.add(out[0], atMs: 1_200)  // too late: counted once already
        lone.add(out[2], atMs: 1_201)
        lone.finish()
        #expect(lone.rows.map(\.count) == [1] && lone.merged == 1)
        // Without the header (linkerd's own tap), two sights stay two rows, as linkerd viz top shows them.
        var plain = TopAggregator()
        for n in 0..<2 { for e in request(UInt64(n), "/x", status: 200, ms: 1) { plain.add(e) } }
        #expect(plain.rows.first?.count == 2)
    }

    @Test func rowsCountBestWorstLastAndSuccessLikeLinkerdTop() {
        var top = TopAggregator()
        var n: UInt64 = 0
        for (path, status, ms) in [("/a", 200, 5), ("/a", 500, 9), ("/a", 200, 2), ("/b", 200, 1), ("/a", 404, 7)] {
            n += 1
            for e in request(n, path, status: status, ms: Int64(ms)) { top.add(e) }
        }
        let rows = top.sortedRows
        #expect(rows.map(\.path) == ["/a", "/b"])
        let a = rows[0]
        #expect(a.count == 4)
        #expect(a.best == 2_000_000 && a.worst == 9_000_000 && a.last == 7_000_000)
        #expect(a.successes == 3 && a.failures == 1)  // 404 is a success, 500 a failure
        #expect(a.source == "10.0.0.1" && a.destination == "web-1")
        #expect(TopAggregator.format(nanos: 81_400) == "81µs")
        #expect(TopAggregator.format(nanos: 9_400_000) == "9ms")
        #expect(TopAggregator.format(nanos: 2_100_000_000) == "2s")
    }

    @Test func grpcFailuresAndResetsAreFailures() {
        #expect(!TopAggregator.isSuccess(status: 200, grpc: 14, reset: nil))
        #expect(TopAggregator.isSuccess(status: 200, grpc: 7, reset: nil))  // top does not count PERMISSION_DENIED
        #expect(!TopAggregator.isSuccess(status: nil, grpc: nil, reset: 2))
    }

    @Test func endsWithoutStartsAreCountedApart() {
        var top = TopAggregator()
        top.add(request(1, "/x", status: 200, ms: 1)[2])
        #expect(top.rows.isEmpty && top.unmatched == 1)
    }

    @Test func sketchQuantilesAreWithinAFewPercent() {
        var s = LatencySketch()
        for ms in 1...1000 { s.record(nanos: Int64(ms) * 1_000_000) }
        let p50 = Double(s.quantile(0.5)!) / 1e6, p99 = Double(s.quantile(0.99)!) / 1e6
        #expect(abs(p50 - 500) / 500 < 0.04)
        #expect(abs(p99 - 990) / 990 < 0.04)
    }
}

@Suite struct TapFilters {
    func request(path: String, method: String = "GET", ns: String = "emojivoto", deploy: String = "web", direction: TapDirection = .inbound) -> TapEvent {
        TapEvent(source: TapPeer(ip: "10.0.0.1", port: 1), destination: TapPeer(ip: "10.0.0.2", port: 2, metadata: ["namespace": ns, "deployment": deploy]),
                 direction: direction, http: .requestInit(id: TapStreamID(base: 0, stream: 0), method: method, scheme: "HTTP", authority: "web:80", path: path, headers: []))
    }

    @Test func filtersMatchWhatTheyName() {
        #expect(TapFilter(path: "/api").matches(request(path: "/api/vote")))
        #expect(!TapFilter(path: "/api").matches(request(path: "/health")))
        #expect(!TapFilter(method: "POST").matches(request(path: "/")))
        #expect(TapFilter(namespace: "emojivoto", deployment: "web").matches(request(path: "/")))
        #expect(!TapFilter(deployment: "voting").matches(request(path: "/")))
        #expect(!TapFilter(direction: .outbound).matches(request(path: "/")))
        #expect(!TapFilter(authority: "other:80").matches(request(path: "/")))
    }

    @Test func filterLineRoundTrips() throws {
        let f = TapFilter(namespace: "emojivoto", path: "/api", direction: .outbound, maxRps: 2.5)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(f.json.utf8)) as? [String: Any])
        #expect(try TapFilter.decode(object).get() == f)
        #expect(TapFilter().json == "{\"maxRps\":100}")
    }
}
