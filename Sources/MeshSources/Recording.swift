import MeshTap
public import MeshMetrics
import Foundation
import Gzip
import PromText

/// One event of a recording, as the pipeline consumes it.
public enum RecordedEvent: Sendable {
    case scrape(ScrapeResult)
    /// A tap or query event, or a kind this version does not know: kept out of the metrics pipeline.
    case other(kind: String, timeMs: Int64)

    public var timeMs: Int64 {
        switch self {
        case .scrape(let r): return r.startedMs
        case .other(_, let t): return t
        }
    }
}

/// The first line of a recording.
public struct RecordingHeader: Sendable {
    public var version: Int
    public var startedMs: Int64
    public var meta: [String: String]
}

/// What went wrong reading a recording, naming the file and line.
public struct RecordingError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Writes meshrec v1: NDJSON, a header line, then one event per line in time order.
/// Each round of scrapes is written with one system call, so a crash loses at most that round.
public final class RecordingWriter {
    private let handle: FileHandle
    /// Set for `.gz` files: each round is compressed and flushed, so what is on disk always decompresses.
    private let gzip: GzipDeflater?
    public let path: String
    public private(set) var events = 0
    public private(set) var bytes = 0

    public init(path: String, startedMs: Int64, meta: [String: String]) throws(RecordingError) {
        self.path = path
        guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
            throw RecordingError("cannot create \(path)")
        }
        self.handle = handle
        if path.hasSuffix(".gz") {
            guard let deflater = GzipDeflater() else { throw RecordingError("cannot start gzip compression for \(path)") }
            gzip = deflater
        } else {
            gzip = nil
        }
        try write(["{\"meshrec\":1,\"started\":\(PromTextWriter.seconds(startedMs)),\"meta\":\(JSONText.object(meta))}"])
    }

    deinit {
        if let gzip { try? handle.write(contentsOf: Data(gzip.deflate([], finish: true))) }
        try? handle.close()
    }

    /// Appends a round of scrape results.
    public func append(_ results: [ScrapeResult]) throws(RecordingError) {
        try write(results.sorted { $0.startedMs < $1.startedMs }.map(Self.line))
    }

    static func line(_ r: ScrapeResult) -> String {
        let labels = Dictionary(r.target.labels.map { ($0.name, $0.value) }, uniquingKeysWith: { $1 })
        var s = "{\"t\":\(PromTextWriter.seconds(r.startedMs)),\"scrape\":{\"target\":\(JSONText.string(r.target.instance)),\"labels\":\(JSONText.object(labels))"
        if let body = r.body {
            s += ",\"body\":" + JSONText.string(String(decoding: body, as: UTF8.self))
        } else {
            s += ",\"error\":" + JSONText.string(r.error ?? "scrape failed")
        }
        return s + "}}"
    }

    private func write(_ lines: [String]) throws(RecordingError) {
        guard !lines.isEmpty else { return }
        let text = Array((lines.joined(separator: "\n") + "\n").utf8)
        let data = Data(gzip.map { $0.deflate(text) } ?? text)
        do {
            try handle.write(contentsOf: data)
        } catch {
            throw RecordingError("cannot write \(path): \(error)")
        }
        events += lines.count
        bytes += data.count
    }
}

/// Reads meshrec v1 line by line. A truncated last line (a crash mid-write) is skipped with a
/// warning; anything else malformed is an error naming the line.
public final class RecordingReader {
    public let path: String
    public let header: RecordingHeader
    /// Warnings for the user (a truncated last line, unknown event kinds).
    public private(set) var warnings: [String] = []
    private var lines: LineReader
    private var lineNumber = 1
    private var unknownKinds: Set<String> = []

    public init(path: String) throws(RecordingError) {
        self.path = path
        guard var lines = LineReader(path: path) else { throw RecordingError("cannot read \(path)") }
        let firstLine = lines.next()
        if let problem = lines.problem { throw RecordingError("\(path): \(problem)") }
        self.lines = lines
        guard let first = firstLine else { throw RecordingError("\(path): empty file, not a meshrec recording") }
        guard let object = try? JSONSerialization.jsonObject(with: Data(first.line)) as? [String: Any],
              let version = object["meshrec"] as? Int else {
            throw RecordingError("\(path):1: not a meshrec recording (the first line must be {\"meshrec\":1,…})")
        }
        guard version == 1 else { throw RecordingError("\(path):1: meshrec version \(version) is newer than this meshtop reads (1)") }
        let started: Int64
        if let seconds = object["started"] as? Double {
            guard let ms = unixMilliseconds(seconds) else { throw RecordingError("\(path):1: \"started\": \(seconds) is not a time") }
            started = ms
        } else {
            started = 0
        }
        var meta: [String: String] = [:]
        for (k, v) in (object["meta"] as? [String: Any]) ?? [:] { meta[k] = "\(v)" }
        header = RecordingHeader(version: version, startedMs: started, meta: meta)
    }

    /// The next event, or nil at the end of the file.
    public func next() throws(RecordingError) -> RecordedEvent? {
        try nextLine { data, _ throws(RecordingError) in try parse(data) }
    }

    /// The time of the next event, reading only the start of its line (for a first pass that
    /// finds a recording's span); nil at the end.
    public func nextTime() throws(RecordingError) -> Int64? {
        try nextLine { data, complete throws(RecordingError) in
            if complete, let t = JSONBytes.leadingTime(data), let ms = unixMilliseconds(t) { return ms }
            return try parse(data).timeMs
        }
    }

    /// The next non-blank line through `read`. Damage at the end of the file (a corrupt gzip
    /// stream, a cut-short last line) ends reading with a warning rather than an error.
    private func nextLine<T>(_ read: ([UInt8], Bool) throws(RecordingError) -> T) throws(RecordingError) -> T? {
        while let (data, complete) = lines.next() {
            lineNumber += 1
            if let problem = lines.problem {
                warnings.append("\(path):\(lineNumber): \(problem); replayed up to line \(lineNumber - 1)")
                return nil
            }
            if data.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            do {
                return try read(data, complete)
            } catch {
                if !complete, lines.atEnd {
                    warnings.append("\(path):\(lineNumber): the last line is cut short (was the recording interrupted?); replayed up to line \(lineNumber - 1)")
                    return nil
                }
                throw error
            }
        }
        return nil
    }

    /// Every remaining event.
    public func readAll() throws(RecordingError) -> [RecordedEvent] {
        var out: [RecordedEvent] = []
        while let e = try next() { out.append(e) }
        return out
    }

    private func parse(_ data: [UInt8]) throws(RecordingError) -> RecordedEvent {
        let at = "\(path):\(lineNumber)"
        let object: JSONBytes.Value
        do {
            object = try JSONBytes.parse(data)
        } catch {
            throw RecordingError("\(at): not a JSON object (\(error.message) at byte \(error.offset + 1))")
        }
        guard case .object(let members) = object else { throw RecordingError("\(at): not a JSON object") }
        guard let t = object["t"]?.number else { throw RecordingError("\(at): the event has no \"t\" (unix seconds)") }
        guard let ms = unixMilliseconds(t) else { throw RecordingError("\(at): \"t\": \(t) is not a time (unix seconds)") }
        if let scrape = object["scrape"] {
            guard case .object = scrape, let target = scrape["target"]?.text else {
                throw RecordingError("\(at): a scrape event needs {\"target\":\"host:port\",…}")
            }
            var labels: [Label] = []
            if let l = scrape["labels"] {
                guard case .object(let map) = l else { throw RecordingError("\(at): \"labels\" must be an object") }
                labels = map.map { m in
                    let value: String
                    switch m.value {
                    case .string(let b): value = String(decoding: b, as: UTF8.self)
                    case .number(let n): value = n == n.rounded() && abs(n) < 1e15 ? String(Int64(n)) : String(n)
                    case .bool(let v): value = String(v)
                    default: value = ""
                    }
                    return Label(String(decoding: m.key, as: UTF8.self), value)
                }.sorted()
            }
            let url = target.contains("://") ? target : "http://\(target)/metrics"
            let st = ScrapeTarget(url: url, labels: labels)
            if case .string(let body)? = scrape["body"] {
                return .scrape(ScrapeResult(target: st, startedMs: ms, durationSeconds: 0, body: body, error: nil))
            }
            if let error = scrape["error"]?.text {
                return .scrape(ScrapeResult(target: st, startedMs: ms, durationSeconds: 0, body: nil, error: error))
            }
            throw RecordingError("\(at): a scrape event needs a \"body\" or an \"error\"")
        }
        let kind = members.first { $0.key != Array("t".utf8) }.map { String(decoding: $0.key, as: UTF8.self) } ?? "unknown"
        if !["tap", "query"].contains(kind), unknownKinds.insert(kind).inserted {
            warnings.append("\(at): unknown event kind \"\(kind)\" skipped")
        }
        return .other(kind: kind, timeMs: ms)
    }
}

/// Reads a file's lines as raw bytes, in chunks, without loading the file whole.
struct LineReader {
    private let handle: FileHandle
    private var buffer: [UInt8] = []
    private var position = 0
    private(set) var atEnd = false
    /// For `.gz` files (by name).
    private let gunzip: GzipInflater?
    /// Why reading stopped early (corrupt compressed data).
    private(set) var problem: String?

    init?(path: String) {
        guard let h = FileHandle(forReadingAtPath: path) else { return nil }
        handle = h
        gunzip = path.hasSuffix(".gz") ? GzipInflater() : nil
    }

    /// The next line without its newline, and whether it ended in one.
    mutating func next() -> (line: [UInt8], complete: Bool)? {
        var searchFrom = position
        while true {
            let found: Int? = buffer.withUnsafeBufferPointer { b in
                guard searchFrom < b.count, let base = b.baseAddress,
                      let p = memchr(base + searchFrom, 0x0A, b.count - searchFrom) else { return nil }
                return base.distance(to: p.assumingMemoryBound(to: UInt8.self))
            }
            if let nl = found {
                let line = Array(buffer[position..<nl])
                position = nl + 1
                return (line, true)
            }
            if atEnd {
                guard position < buffer.count else { return nil }
                defer { position = buffer.count }
                return (Array(buffer[position...]), false)
            }
            // Drop what has been read, then read more.
            if position > 0 {
                buffer.removeFirst(position)
                position = 0
            }
            searchFrom = buffer.count
            let chunk = handle.readData(ofLength: 1 << 20)
            if chunk.isEmpty {
                atEnd = true
            } else if let gunzip {
                do {
                    buffer.append(contentsOf: try gunzip.inflate(Array(chunk)))
                } catch {
                    problem = "\(error.description) after byte \(buffer.count)"
                    atEnd = true
                }
            } else {
                buffer.append(contentsOf: chunk)
            }
        }
    }
}
