public import MeshMetrics
import CCurl
import PromText
#if canImport(Glibc)
import Glibc
#endif

/// Scrapes many targets at once over HTTP with libcurl's multi interface: one thread, every
/// transfer in flight together, each with its own timeout; gzip accepted.
///
/// Not thread-safe: use one scraper per thread.
/// How scrapes are taken: over HTTP (`Scraper`), or from memory in tests.
public protocol ScrapeTransport {
    /// One round: every target at once, each result stamped with `now()` at its start.
    func scrape(_ targets: [ScrapeTarget], now: () -> Int64) -> [ScrapeResult]
    /// One round, each result handed to `each` (with its target's index) as it comes.
    func scrape(_ targets: [ScrapeTarget], now: () -> Int64, each: (Int, ScrapeResult) -> Void)
}

extension ScrapeTransport {
    public func scrape(_ targets: [ScrapeTarget], now: () -> Int64, each: (Int, ScrapeResult) -> Void) {
        for (i, r) in scrape(targets, now: now).enumerated() { each(i, r) }
    }
}

public final class Scraper: ScrapeTransport {
    private let multi: UnsafeMutableRawPointer
    public var timeoutSeconds: Double
    public var maxBodyBytes: Int
    /// Transfers in flight at once: enough to hide latency, few enough that the bodies waiting to
    /// be parsed stay small (a linkerd proxy's scrape is ~0.5 MB).
    public var maxInFlight = 32

    public init(timeoutSeconds: Double = 5, maxBodyBytes: Int = 256 << 20) {
        _ = curlGlobalInit
        multi = curl_multi_init()!
        self.timeoutSeconds = timeoutSeconds
        self.maxBodyBytes = maxBodyBytes
    }

    deinit {
        curl_multi_cleanup(multi)
    }

    /// Scrapes every target and returns when all have finished or timed out, in target order.
    public func scrape(_ targets: [ScrapeTarget], now: () -> Int64) -> [ScrapeResult] {
        var results = [ScrapeResult?](repeating: nil, count: targets.count)
        scrape(targets, now: now) { i, r in results[i] = r }
        return results.map { $0! }
    }

    /// Scrapes every target, handing each result to `each` (with the target's index) as soon as
    /// its transfer ends, so a round's bodies need not all be held at once. At most
    /// `maxInFlight` transfers run together; each target's time starts when its own does.
    public func scrape(_ targets: [ScrapeTarget], now: () -> Int64, each: (Int, ScrapeResult) -> Void) {
        var transfers = [Transfer?](repeating: nil, count: targets.count)
        var index: [UnsafeMutableRawPointer: Int] = [:]
        var next = 0
        func startNext() {
            while next < targets.count, index.count < maxInFlight {
                let i = next
                next += 1
                let started = now()
                guard let easy = curl_easy_init() else {
                    each(i, ScrapeResult(target: targets[i], startedMs: started, durationSeconds: 0, body: nil, error: "could not create a transfer"))
                    continue
                }
                let sink = BodySink(limit: maxBodyBytes)
                configure(easy, url: targets[i].url, sink: sink)
                curl_multi_add_handle(multi, easy)
                transfers[i] = Transfer(target: targets[i], easy: easy, started: started, sink: sink)
                index[easy] = i
            }
        }
        startNext()
        var running: Int32 = 0
        repeat {
            curl_multi_perform(multi, &running)
            var left: Int32 = 0
            while let msg = curl_multi_info_read(multi, &left) {
                guard msg.pointee.msg == CURLMSG_DONE, let easy = msg.pointee.easy_handle, let i = index.removeValue(forKey: easy),
                      let t = transfers[i] else { continue }
                let code = msg.pointee.data.result
                transfers[i] = nil  // the body goes with the result
                each(i, finish(t, easy: easy, code: code))
            }
            if next < targets.count, index.count < maxInFlight {
                startNext()
                continue
            }
            if running > 0 {
                var ready: Int32 = 0
                curl_multi_poll(multi, nil, 0, 100, &ready)
            }
            // `running` counts what curl had before the last additions: transfers added since
            // (still in `index`) keep the loop going until curl reports them done.
        } while running > 0 || next < targets.count || !index.isEmpty
    }

    private func finish(_ t: Transfer, easy: UnsafeMutableRawPointer, code: CURLcode) -> ScrapeResult {
        var status = 0
        var total = 0.0
        mt_curl_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
        mt_curl_getinfo_double(easy, CURLINFO_TOTAL_TIME, &total)
        var error: String?
        if t.sink.overflowed {
            error = "the response is larger than \(maxBodyBytes) bytes"
        } else if code != CURLE_OK {
            error = describe(code, url: t.target.url)
        } else if !(200...299).contains(status) {
            error = "HTTP \(status) from \(t.target.url)"
        }
        var result = ScrapeResult(target: t.target, startedMs: t.started, durationSeconds: total,
                                  body: error == nil ? t.sink.bytes : nil, error: error)
        result.serverDateMs = t.sink.dateHeader.flatMap(HTTPDate.parseMs)
        curl_multi_remove_handle(multi, easy)
        curl_easy_cleanup(easy)
        return result
    }

    private func configure(_ easy: UnsafeMutableRawPointer, url: String, sink: BodySink) {
        mt_curl_setopt_string(easy, CURLOPT_URL, url)
        mt_curl_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        mt_curl_setopt_long(easy, CURLOPT_TIMEOUT_MS, Int(timeoutSeconds * 1000))
        mt_curl_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, Int(min(timeoutSeconds, 2) * 1000))
        mt_curl_setopt_string(easy, CURLOPT_ACCEPT_ENCODING, "")  // every encoding libcurl decodes, gzip included
        mt_curl_setopt_string(easy, CURLOPT_USERAGENT, "meshtop")
        mt_curl_setopt_string(easy, CURLOPT_PROTOCOLS_STR, "http,https")
        mt_curl_setopt_write(easy, bodyWriter)
        mt_curl_setopt_pointer(easy, CURLOPT_WRITEDATA, Unmanaged.passUnretained(sink).toOpaque())
        mt_curl_setopt_header(easy, headerReader)
        mt_curl_setopt_pointer(easy, CURLOPT_HEADERDATA, Unmanaged.passUnretained(sink).toOpaque())
    }

    private func describe(_ code: CURLcode, url: String) -> String {
        switch code {
        case CURLE_COULDNT_CONNECT: return "connection refused by \(url)"
        case CURLE_OPERATION_TIMEDOUT: return "timed out after \(timeoutSeconds)s scraping \(url)"
        case CURLE_COULDNT_RESOLVE_HOST: return "cannot resolve the host of \(url)"
        case CURLE_UNSUPPORTED_PROTOCOL, CURLE_URL_MALFORMAT: return "not an http(s) URL: \(url)"
        default: return "\(String(cString: curl_easy_strerror(code))) (\(url))"
        }
    }
}

private let curlGlobalInit: Void = {
    curl_global_init(Int(CURL_GLOBAL_DEFAULT))
}()

private struct Transfer {
    var target: ScrapeTarget
    var easy: UnsafeMutableRawPointer?
    var started: Int64
    var sink: BodySink
}

private final class BodySink {
    var bytes: [UInt8] = []
    let limit: Int
    var overflowed = false
    /// The value of the response's `Date` header.
    var dateHeader: String?

    init(limit: Int) { self.limit = limit }
}

private let headerReader: mt_curl_write_fn = { pointer, size, count, userdata in
    guard let pointer, let userdata else { return 0 }
    let n = size * count
    // Only `Date:` is kept; a header line is short, so reading it whole is cheap.
    if n > 5, n < 200 {
        let line = pointer.withMemoryRebound(to: UInt8.self, capacity: n) { String(decoding: UnsafeBufferPointer(start: $0, count: n), as: UTF8.self) }
        if line.lowercased().hasPrefix("date:") {
            Unmanaged<BodySink>.fromOpaque(userdata).takeUnretainedValue().dateHeader = String(line.dropFirst(5).drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
        }
    }
    return n
}

/// HTTP dates (RFC 9110 IMF-fixdate).
public enum HTTPDate {
    /// `Sun, 06 Nov 1994 08:49:37 GMT` → milliseconds since the epoch; nil for any other form.
    public static func parseMs(_ text: String) -> Int64? {
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        let parts = text.split(separator: " ")
        guard parts.count == 6, parts[5] == "GMT", let day = Int32(parts[1]), let month = months.firstIndex(of: String(parts[2])),
              let year = Int32(parts[3]) else { return nil }
        let clock = parts[4].split(separator: ":").compactMap { Int32($0) }
        guard clock.count == 3 else { return nil }
        var t = tm()
        t.tm_year = year - 1900
        t.tm_mon = Int32(month)
        t.tm_mday = day
        t.tm_hour = clock[0]
        t.tm_min = clock[1]
        t.tm_sec = clock[2]
        return Int64(timegm(&t)) * 1000
    }
}

private let bodyWriter: mt_curl_write_fn = { pointer, size, count, userdata in
    guard let pointer, let userdata else { return 0 }
    let sink = Unmanaged<BodySink>.fromOpaque(userdata).takeUnretainedValue()
    let n = size * count
    if sink.bytes.count + n > sink.limit {
        sink.overflowed = true
        return 0  // aborts the transfer
    }
    pointer.withMemoryRebound(to: UInt8.self, capacity: n) { sink.bytes.append(contentsOf: UnsafeBufferPointer(start: $0, count: n)) }
    return n
}
