import MeshSources

/// libFuzzer entry: any bytes as Prometheus's answer to an instant query (what `meshtop stat
/// --prometheus` reads). Samples or a clear error; a value that is not a number of pods (NaN,
/// ±Inf, 1e300, negative, fractional) is refused by name, never trapped.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let body = Array(UnsafeBufferPointer(start: data, count: size))
    guard let samples = try? PrometheusAnswer.vector(body, promql: "count(up)") else { return 0 }
    for sample in samples {
        if let pods = try? PrometheusAnswer.podCount(sample.value, query: "count(up)") {
            precondition(pods >= 0 && Double(pods) == sample.value, "a pod count that is not the value answered")
        } else {
            precondition(!(sample.value.isFinite && sample.value >= 0 && sample.value < 1e12 && sample.value == sample.value.rounded()),
                         "a whole number of pods was refused")
        }
    }
    return 0
}
