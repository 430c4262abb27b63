import Foundation

/// Linkerd-shaped expositions of any size, for benchmarks and load tests.
public enum LinkerdPayload {
    /// A linkerd-shaped exposition: one proxy whose outbound side talks to `destinations` endpoints,
    /// each with linkerd2-proxy's families, label sets and buckets.
    public static func exposition(destinations: Int, pod: Int = 0) -> String {
        let bounds = ["1", "2", "3", "4", "5", "10", "20", "30", "40", "50", "100", "200", "300", "400", "500",
                      "1000", "2000", "3000", "4000", "5000", "10000", "20000", "30000", "40000", "50000", "+Inf"]
        var out = ""
        out.reserveCapacity(destinations * 21_000)
        func labels(_ d: Int) -> String {
            let ip = "10.\(42 + d / 65536).\(d / 256 % 256).\(d % 256)"
            return "direction=\"outbound\",authority=\"svc-\(d).prod-\(d % 17).svc.cluster.local:8080\",target_addr=\"\(ip):8080\",target_ip=\"\(ip)\",target_port=\"8080\",tls=\"true\",server_id=\"svc-\(d).prod-\(d % 17).serviceaccount.identity.linkerd.cluster.local\",dst_control_plane_ns=\"linkerd\",dst_deployment=\"svc-\(d)\",dst_namespace=\"prod-\(d % 17)\",dst_pod=\"svc-\(d)-7d9f8b6c5-x\(pod)q2z\",dst_pod_template_hash=\"7d9f8b6c5\",dst_service=\"svc-\(d)\",dst_serviceaccount=\"svc-\(d)\""
        }
        out += "# HELP request_total Total count of HTTP requests.\n# TYPE request_total counter\n"
        for d in 0..<destinations { out += "request_total{\(labels(d))} \(1000 + d * 7)\n" }
        out += "# HELP response_latency_ms Elapsed times between a request's headers being received and its response stream completing\n# TYPE response_latency_ms histogram\n"
        for d in 0..<destinations {
            for status in ["200", "503"] {
                let l = labels(d) + ",status_code=\"\(status)\""
                for (i, b) in bounds.enumerated() { out += "response_latency_ms_bucket{\(l),le=\"\(b)\"} \(min(i * 40, 600) + d)\n" }
                out += "response_latency_ms_count{\(l)} \(600 + d)\nresponse_latency_ms_sum{\(l)} \(12345 + d * 3)\n"
            }
        }
        out += "# HELP response_total Total count of HTTP responses.\n# TYPE response_total counter\n"
        for d in 0..<destinations {
            out += "response_total{\(labels(d)),status_code=\"200\",classification=\"success\",grpc_status=\"\",error=\"\"} \(990 + d * 7)\n"
            out += "response_total{\(labels(d)),status_code=\"503\",classification=\"failure\",grpc_status=\"\",error=\"\"} \(10 + d % 5)\n"
        }
        for (name, type) in [("tcp_open_total", "counter"), ("tcp_open_connections", "gauge"), ("tcp_read_bytes_total", "counter"), ("tcp_write_bytes_total", "counter")] {
            out += "# HELP \(name) \(name)\n# TYPE \(name) \(type)\n"
            for d in 0..<destinations {
                let l = labels(d).replacingOccurrences(of: "direction=\"outbound\",", with: "direction=\"outbound\",peer=\"dst\",")
                out += "\(name){\(l)} \(d * 13 + 1)\n"
            }
        }
        return out
    }
}
