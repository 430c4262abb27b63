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

    @Test func incidentPagesForVotingAndWebOnly() throws {
        let r = try run(meshtopBinary, ["slo", "deploy", "-n", "emojivoto", "--objective", "99.9", "--replay", incident])
        #expect(r.status == 1)
        let alerts = Dictionary(uniqueKeysWithValues: r.stdout.split(separator: "\n").dropFirst().map { line in
            let cells = line.split(separator: " ")
            return (String(cells[0]), String(cells[cells.count - 1]))
        })
        #expect(alerts == ["emoji": "none", "vote-bot": "none", "voting": "page", "web": "page"])
        // The recording is 1m10s long: every workbook window is computed over that, and said so.
        #expect(r.stderr.contains("6h: only 1m10s of data"))
        #expect(r.stdout.contains("*"))
    }

    @Test func oneWorkloadIsAnObjectAndAHealthyMeshExitsZero() throws {
        let r = try run(meshtopBinary, ["slo", "deploy/emoji", "-n", "emojivoto", "--objective", "99", "--replay", healthy, "-o", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try json(r.stdout) as? [String: Any])
        #expect(object["workload"] as? String == "emoji")
        #expect(object["alert"] as? String == "none")
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
        // Voting fails about a quarter of its requests: within a 50% objective. Emoji is clean.
        #expect(r.status == 0, "\(r.stdout)")
        // The flag wins over the file.
        let flag = try run(meshtopBinary, ["slo", "deploy/voting", "-n", "emojivoto", "--objective", "99.9", "--replay", incident, "-o", "json"],
                           environment: ["MESHTOP_CONFIG": file.path])
        #expect(flag.status == 1)
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
