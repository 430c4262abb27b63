import PromText

extension MetricStore {
    /// Every sample held, as OpenMetrics text with timestamps (seconds), one series after another
    /// in time order, ending in `# EOF`: what `promtool tsdb create-blocks-from openmetrics` loads,
    /// so a real Prometheus can answer queries over exactly the samples meshtop holds.
    public func openMetrics() -> String {
        var out = ""
        for id in keys.indices {
            let key = keys[id]
            let prefix = key.name + PromTextWriter.format(labels: key.labels) + " "
            for p in points(of: id, from: .min, through: .max) {
                out += prefix + PromTextWriter.format(p.v) + " " + PromTextWriter.seconds(p.t) + "\n"
            }
        }
        return out + "# EOF\n"
    }
}
