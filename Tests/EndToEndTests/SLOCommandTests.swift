import Foundation
import Testing
import MeshTesting
import MeshtopApp

/// `meshtop slo` on the recorded fixtures: its success is `stat`'s at the same window and moment,
/// its burn rate `(1 − success) / (1 − objective)`, and its exit code the verdict.
@Suite struct SLOCommand {
    let incident = repositoryRoot.path + "/Fixtures/recordings/demo-incident.meshrec.gz"
    let healthy = repositoryRoot.path + "/Fixtures/recordings/demo-healthy.meshrec.gz"

    func json(_ text: String) throws -> Any { try JSONSerialization.jsonObject(with: Data(text.utf8)) }

    /// `stat -o json`'s success per workload name.
    func statSuccess(_ file: String, window: String, at: String?) throws -> [String: Double] {
        let r = try run(meshtopBinary, ["stat", "deploy", "--replay", file, "-t", window, "-o", "json"] + (at.map { ["--at", $0] } ?? []))
        #expect(r.status == 0, "\(r.stderr)")
        var out: [String: Double] = [:]
        for row in try json(r.stdout) as? [[String: Any]] ?? [] {
            if let name = row["name"] as? String, let s = row["success"] as? Double { out[name] = s }
        }
        return out
    }

    @Test(arguments: [(nil, "99.9"), ("+40s", "99.5"), ("-10s", "95")] as [(String?, String)])
    func burnRateIsStatsSuccessAgainstTheObjective(at: String?, objective: String) throws {
        let args = ["slo", "deploy", "--objective", objective, "--windows", "10s,30s", "--replay", incident, "-o", "json"] + (at.map { ["--at", $0] } ?? [])
        let r = try run(meshtopBinary, args)
        // 10s and 30s are no rule's windows: no verdict, exit 0, and stderr says why.
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("the page rule needs the 1h and 5m windows; it is not evaluated"))
        let rows = try #require(try json(r.stdout) as? [[String: Any]])
        let target = Double(objective)! / 100
        var compared = 0
        for window in ["10s", "30s"] {
            let stat = try statSuccess(incident, window: window, at: at)
            #expect(!stat.isEmpty)
            for row in rows {
                let name = try #require(row["workload"] as? String)
                #expect(abs((row["objective"] as? Double ?? 0) - target) < 1e-12)
                let w = try #require((row["windows"] as? [[String: Any]])?.first { $0["window"] as? String == window })
                #expect(w["covered"] as? String == window)
                guard let success = w["success"] as? Double else {
                    #expect(stat[name] == nil, "\(name): stat has traffic where slo has none")
                    continue
                }
                #expect(stat[name] == success, "\(name) \(window): slo's success is stat's")
                let burn = try #require(w["burn_rate"] as? Double)
                #expect(abs(burn - (1 - success) / (1 - target)) < 1e-9 * max(1, burn))
                compared += 1
            }
        }
        #expect(compared >= 6)
    }

    /// Alerts by workload from the table's last column.
    func alerts(_ table: String) -> [String: String] {
        Dictionary(uniqueKeysWithValues: table.split(separator: "\n").dropFirst().map { line in
            let cells = line.split(separator: " ")
            return (String(cells[0]), String(cells[cells.count - 1]))
        })
    }

    @Test func aShortRecordingShowsBurnButJudgesNoRule() throws {
        let r = try run(meshtopBinary, ["slo", "deploy", "-n", "emojivoto", "--objective", "99.9", "--replay", incident])
        // The recording is 1m10s long: every workbook window is computed over that and marked, and
        // no rule is judged on it (a 1h rule does not page on a minute).
        #expect(r.status == 0, "\(r.stderr)")
        #expect(alerts(r.stdout) == ["auth": "unknown", "emoji": "unknown", "store": "unknown", "vote-bot": "unknown", "voting": "unknown",
                                     "web": "unknown"])
        #expect(r.stderr.contains("6h: only 1m10s of data"))
        #expect(r.stderr.contains("the page rule needs 1h of data and there is 1m10s; it is not evaluated"))
        #expect(r.stdout.contains("157.8x*"), "voting's burn is still shown: \(r.stdout)")
    }

    /// A 6h10m recording, a scrape a minute: `good` fails 0.05% of its requests throughout; `bad`
    /// the same, then 5% for its last two hours.
    static func longRecording() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("meshtop-slo-\(UUID().uuidString).meshrec").path
        let start = 1_795_000_000.0
        var lines = ["{\"meshrec\":1,\"started\":\(start),\"meta\":{\"source\":\"test\"}}"]
        var totals: [String: (ok: Double, failed: Double)] = ["good": (0, 0), "bad": (0, 0)]
        for minute in 0...370 {
            for name in ["good", "bad"] {
                let rate = name == "bad" && minute > 250 ? 0.05 : 0.0005
                totals[name]!.ok += 6_000 * (1 - rate)
                totals[name]!.failed += 6_000 * rate
                let body = "response_total{direction=\\\"inbound\\\",classification=\\\"success\\\",status_code=\\\"200\\\"} \(totals[name]!.ok)\\n"
                    + "response_total{direction=\\\"inbound\\\",classification=\\\"failure\\\",status_code=\\\"500\\\"} \(totals[name]!.failed)\\n"
                lines.append("{\"t\":\(start + Double(minute) * 60),\"scrape\":{\"target\":\"http://10.0.0.\(name == "good" ? 1 : 2):4191/metrics\",\"labels\":{\"namespace\":\"prod\",\"deployment\":\"\(name)\"},\"body\":\"\(body)\"}}")
            }
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func sixHoursOfDataJudgeTheRules() throws {
        let file = try Self.longRecording()
        defer { try? FileManager.default.removeItem(atPath: file) }
        let r = try run(meshtopBinary, ["slo", "deploy", "-n", "prod", "--objective", "99.9", "--replay", file, "-o", "json"])
        #expect(r.status == 1, "bad pages: \(r.stderr)")
        #expect(!r.stderr.contains("not evaluated"), "\(r.stderr)")
        let rows = try #require(try json(r.stdout) as? [[String: Any]])
        let byName = Dictionary(uniqueKeysWithValues: rows.map { ($0["workload"] as? String ?? "", $0) })
        #expect(byName["bad"]?["alert"] as? String == "page")
        #expect(byName["good"]?["alert"] as? String == "none")
        let badWindows = try #require(byName["bad"]?["windows"] as? [[String: Any]])
        // 5% errors against a 0.1% budget: 50x over 5m and 1h; a third of 6h at 5% is about 17x.
        for (window, burn) in [("5m", 50.0), ("1h", 50.0), ("6h", 50.0 / 3)] {
            let w = try #require(badWindows.first { $0["window"] as? String == window })
            #expect(w["covered"] as? String == window)
            #expect(abs((w["burn_rate"] as? Double ?? 0) - burn) < burn * 0.03, "\(window): \(w)")
        }
        let rules = try #require(byName["bad"]?["rules"] as? [[String: Any]])
        #expect(rules.map { $0["state"] as? String } == ["firing", "firing"])
        let good = try run(meshtopBinary, ["slo", "deploy/good", "-n", "prod", "--objective", "99.9", "--replay", file])
        #expect(good.status == 0)
        #expect(alerts(good.stdout) == ["good": "none"])
    }

    @Test func oneWorkloadIsAnObjectAndAHealthyMeshExitsZero() throws {
        let r = try run(meshtopBinary, ["slo", "deploy/emoji", "-n", "emojivoto", "--objective", "99", "--replay", healthy, "-o", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try json(r.stdout) as? [String: Any])
        #expect(object["workload"] as? String == "emoji")
        #expect(object["alert"] as? String == "unknown", "30 s of data judge no rule")
        #expect((object["windows"] as? [Any])?.count == 4)
    }

    @Test(arguments: [
        (["--objective", "100"], "--objective 100"),
        (["--objective", "abc"], "--objective abc"),
        (["--objective", "99.9", "--windows", "5m,soon"], "soon is not a duration"),
        (["--objective", "99.9", "--at", "+1h"], "after the recording"),
    ])
    func badInputExitsTwoNamingIt(extra: [String], message: String) throws {
        let r = try run(meshtopBinary, ["slo", "deploy", "--replay", incident] + extra)
        #expect(r.status == 2)
        #expect(r.stderr.contains(message), "\(r.stderr)")
        #expect(r.stdout.isEmpty)
    }

    @Test func unknownWorkloadIsAnInputError() throws {
        let r = try run(meshtopBinary, ["slo", "deploy/nosuch", "--objective", "99.9", "--replay", incident])
        #expect(r.status == 2)
        #expect(r.stderr.contains("no such deployment"))
    }
}

/// Objectives declared once in the config file, for `meshtop slo` without --objective.
@Suite struct SLOConfig {
    let incident = repositoryRoot.path + "/Fixtures/recordings/demo-incident.meshrec.gz"

    func config(_ text: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("meshtop-slo-\(UUID().uuidString).yaml")
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    @Test func declaredObjectivesApplyEachToItsWorkload() throws {
        let file = try config("""
        slos:
          - {workload: deploy/voting, namespace: emojivoto, objective: 50}
          - {workload: deploy/emoji, objective: "99.9%"}
        """)
        defer { try? FileManager.default.removeItem(at: file) }
        let r = try run(meshtopBinary, ["slo", "deploy", "--replay", incident, "-o", "json"], environment: ["MESHTOP_CONFIG": file.path])
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]], "\(r.stderr)")
        let objectives = Dictionary(uniqueKeysWithValues: rows.map { ($0["workload"] as? String ?? "", $0["objective"] as? Double ?? -1) })
        #expect(objectives == ["voting": 0.5, "emoji": 0.999])
        #expect(r.status == 0, "\(r.stdout)")
        // The flag wins over the file.
        let flag = try run(meshtopBinary, ["slo", "deploy/voting", "-n", "emojivoto", "--objective", "99.9", "--replay", incident, "-o", "json"],
                           environment: ["MESHTOP_CONFIG": file.path])
        #expect((try JSONSerialization.jsonObject(with: Data(flag.stdout.utf8)) as? [String: Any])?["objective"] as? Double == 0.999)
    }

    @Test func noObjectiveAnywhereIsAnInputError() throws {
        let r = try run(meshtopBinary, ["slo", "deploy/web", "--replay", incident], environment: ["MESHTOP_CONFIG": "/nonexistent/meshtop.yaml"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("no objective: give --objective"), "\(r.stderr)")
    }

    @Test(arguments: [
        ("slos: 3", "slos needs a list"),
        ("slos:\n  - {workload: voting, objective: 99}", "write it KIND/NAME"),
        ("slos:\n  - {workload: deploy/voting, objective: 100}", "a percentage between 0 and 100"),
        ("slos:\n  - {workload: deploy/voting}", "needs objective"),
        ("slos:\n  - {workload: deploy/voting, objective: 99, budget: 3}", "unknown slo key \"budget\""),
    ])
    func mistakesAreNamedWithTheirLine(text: String, message: String) throws {
        #expect(throws: ConfigError.self) { try UserConfig.parse(text, file: "c.yaml") }
        do {
            _ = try UserConfig.parse(text, file: "c.yaml")
        } catch {
            #expect(error.description.contains(message), "\(error.description)")
            #expect(error.description.hasPrefix("c.yaml:"))
        }
    }
}
