import Foundation
import Testing
import MeshTesting
import MeshMetrics
import MeshSources

/// A Prometheus API on loopback that answers every query with one sample of `value`
/// (`"NaN"`, `"+Inf"`, `"3"`), as a misbehaving or odd server might, after `delaySeconds`
/// (each request on a thread of its own, as Prometheus serves them); a Python process.
final class OddPrometheus {
    let process = Process()
    let port: Int

    init(value: String, delaySeconds: Double = 0) throws {
        let script = """
        import http.server, json, sys, time
        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                time.sleep(float(sys.argv[3]))
                body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
                    {"metric": {"namespace": "emojivoto", "deployment": "web"}, "value": [1764028800, sys.argv[1]]}]}}).encode()
                self.send_response(200); self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
            def log_message(self, *a): pass
        s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        with open(sys.argv[2] + ".tmp", "w") as f: f.write(str(s.server_address[1]))
        import os; os.rename(sys.argv[2] + ".tmp", sys.argv[2])
        s.serve_forever()
        """
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let portFile = FileManager.default.temporaryDirectory.appendingPathComponent("odd-prometheus-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: portFile) }
        process.arguments = ["python3", "-c", script, value, portFile.path, String(delaySeconds)]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        var text = ""
        eventually { text = (try? String(contentsOf: portFile, encoding: .utf8)) ?? ""; return !text.isEmpty }
        guard let port = Int(text) else {
            kill(process.processIdentifier, SIGKILL)
            throw OddPrometheusError()
        }
        self.port = port
    }

    var url: String { "http://127.0.0.1:\(port)" }

    /// SIGKILL: a child of the test process may inherit SIGTERM ignored.
    func stop() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}

struct OddPrometheusError: Error, CustomStringConvertible {
    var description: String { "the fake Prometheus did not start" }
}

/// Numbers from a Prometheus answer are input: NaN or an infinity where a count belongs is a
/// clear error naming the query (exit 2), never a trapped conversion.
@Suite struct PrometheusAnswers {
    @Test(arguments: ["NaN", "+Inf", "-Inf", "1e300"])
    func aCountThatIsNotANumberOfPodsIsAnInputError(value: String) throws {
        let server = try OddPrometheus(value: value)
        defer { server.stop() }
        let r = try run(meshtopBinary, ["stat", "deploy", "--prometheus", server.url])
        #expect(r.status == 2, "exit \(r.status): \(r.stderr)")
        #expect(r.stderr.contains("for count(up") && r.stderr.contains("not a number of pods"), "\(r.stderr)")
    }

    @Test func wholeNumbersStillWork() throws {
        let server = try OddPrometheus(value: "3")
        defer { server.stop() }
        let r = try run(meshtopBinary, ["stat", "deploy", "--prometheus", server.url, "-o", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("\"name\": \"web\""), "\(r.stdout)")
    }
}

/// A refresh's queries go out together, each with its own timeout: a slow or silent server costs
/// one timeout per refresh, not one per query, and says which query it did not answer.
@Suite struct PrometheusQueries {
    func query() -> SnapshotQuery {
        SnapshotQuery(kindLabel: "deployment", namespace: nil, windowMs: 60_000, atMs: nil, stepMs: 2_000)
    }

    @Test func aSilentServerCostsOneTimeoutAndNamesTheQuery() throws {
        let server = try OddPrometheus(value: "3", delaySeconds: 3_600)
        defer { server.stop() }
        let feed = PrometheusFeed(source: PrometheusSource(client: PrometheusClient(baseURL: server.url, timeoutSeconds: 1)))
        let started = Date()
        let snapshot = feed.snapshot(for: query())
        let took = Date().timeIntervalSince(started)
        // stat and edges send 14 queries: one after another, that would be 14 s of timeouts.
        #expect(took < 7, "a refresh took \(took) s")
        let problem = snapshot.problems.first ?? ""
        #expect(problem.hasPrefix("Prometheus at \(server.url): no answer within 1s to "), "\(problem)")
        #expect(!problem.dropFirst(10).contains("Prometheus at"), "the server named twice: \(problem)")
        #expect(snapshot.workloads.isEmpty)
    }

    @Test func slowAnswersArriveTogether() throws {
        let server = try OddPrometheus(value: "3", delaySeconds: 1)
        defer { server.stop() }
        let feed = PrometheusFeed(source: PrometheusSource(client: PrometheusClient(baseURL: server.url, timeoutSeconds: 10)))
        let started = Date()
        let snapshot = feed.snapshot(for: query())
        let took = Date().timeIntervalSince(started)
        #expect(snapshot.problems.isEmpty, "\(snapshot.problems)")
        #expect(snapshot.workloads.map(\.workload.name) == ["web"])
        #expect(snapshot.workloads.first?.runningPods == 3)
        // 14 answers a second late each: 14 s in sequence, about 1 s together.
        #expect(took < 7, "a refresh took \(took) s")
    }
}
