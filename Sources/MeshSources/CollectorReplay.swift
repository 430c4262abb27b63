public import MeshMetrics

extension Collector {
    /// Adds the events of a recording up to `untilMs` (all of them when nil), as they were live.
    public mutating func replay(_ reader: RecordingReader, untilMs: Int64? = nil) throws(RecordingError) {
        while let event = try reader.next() {
            if let untilMs, event.timeMs > untilMs { break }
            if case .scrape(let result) = event { ingest([result]) }
        }
    }
}
