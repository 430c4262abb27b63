import Foundation
import MeshTesting
import Testing

/// `meshtop timeline` on the recorded incident: voting breaks first, web follows, both recover.
@Suite struct TimelineCommand {
    let incident = repositoryRoot.path + "/Fixtures/recordings/demo-incident.meshrec.gz"

    @Test func incidentStartsWithVotingThenWebThenRecovers() throws {
        let r = try run(meshtopBinary, ["timeline", "--replay", incident, "-o", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        let events = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
        let subjects = events.compactMap { $0["subject"] as? String }
        #expect(subjects.first == "deploy/voting", "\(subjects)")
        let at = events.compactMap { $0["at"] as? String }
        #expect(at == at.sorted(), "oldest first")
        // web's first change comes after voting's, and every change that left comes back after it.
        let firstWeb = try #require(subjects.firstIndex(of: "deploy/web"))
        #expect(firstWeb > subjects.firstIndex(of: "deploy/voting")!)
        let voting = events.filter { $0["subject"] as? String == "deploy/voting" }
        let successChanges = voting.filter { $0["metric"] as? String == "success" }
        #expect(successChanges.map { $0["change"] as? String } == ["left", "returned"])
        let fell = try #require(successChanges.first)
        #expect((fell["from"] as? Double ?? 0) > 0.99 && (fell["to"] as? Double ?? 1) < 0.9, "\(fell)")
        #expect(!subjects.contains("deploy/emoji"), "emoji did not change")
        for e in events { #expect(Set(e.keys).isSuperset(of: ["at", "subject", "metric", "from", "to"])) }
    }

    @Test func tableSaysWhenWhatAndFromTo() throws {
        let r = try run(meshtopBinary, ["timeline", "-n", "emojivoto", "--replay", incident])
        #expect(r.status == 0)
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.first?.hasPrefix("TIME") == true)
        #expect(lines.dropFirst().first?.contains("deploy/voting") == true)
        #expect(lines.contains { $0.contains("deploy/voting") && $0.contains("success fell") && $0.contains("100.00%") })
    }

    @Test func badInputExitsTwo() throws {
        let missing = try run(meshtopBinary, ["timeline", "--replay", "/nonexistent.meshrec"])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("/nonexistent.meshrec"))
        let window = try run(meshtopBinary, ["timeline", "--replay", incident, "-t", "soon"])
        #expect(window.status == 2)
        #expect(window.stderr.contains("-t soon"))
    }
}
