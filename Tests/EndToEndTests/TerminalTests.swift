import MeshTesting
import Foundation
import Testing

/// A tmux server of the test's own, with one pane of a given size.
final class TmuxPane {
    let socket = "meshtop-test-\(UUID().uuidString.prefix(8))"
    let directory: URL

    init(width: Int, height: Int, command: String, environment: [String: String] = [:]) throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux") else {
            throw TerminalTestError("tmux is missing: make test installs it (apt-get install tmux)")
        }
        directory = FileManager.default.temporaryDirectory.appendingPathComponent(socket)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let env = environment.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let script = directory.appendingPathComponent("run.sh")
        try """
        #!/bin/sh
        cd \(directory.path)
        stty -a > stty-before
        env TERM=xterm-256color \(env) \(command)
        rc=$?
        stty -a > stty-after
        echo $rc > rc
        sleep 600
        """.write(to: script, atomically: true, encoding: .utf8)
        try tmux(["new-session", "-d", "-x", String(width), "-y", String(height), "sh \(script.path)"])
    }

    deinit {
        _ = try? tmux(["kill-server"])
        try? FileManager.default.removeItem(at: directory)
    }

    /// Ends the program in the pane, if it still runs, so no test leaves a demo behind.
    func stop() {
        _ = try? tmux(["kill-server"])
    }

    /// Runs a tmux command against this server and returns what it printed. Spawned and reaped
    /// directly: the daemon `new-session` starts confuses Foundation's Process.
    @discardableResult
    func tmux(_ args: [String]) throws -> String {
        try spawn("/usr/bin/tmux", ["-L", socket, "-f", "/dev/null"] + args)
    }

    func send(_ keys: String...) throws { try tmux(["send-keys", "-t", "0"] + keys) }

    /// The pane's text, or with `escapes` its text with colour and attribute escape sequences.
    func capture(escapes: Bool = false) throws -> String {
        try tmux(["capture-pane", "-p", "-t", "0"] + (escapes ? ["-e"] : []))
    }

    /// Waits until the pane shows `text`; returns the capture.
    @discardableResult
    func wait(for text: String, seconds: Double = 20) throws -> String {
        var last = ""
        if try eventually(within: seconds, pollMs: 200, { last = try capture(); return last.contains(text) }) { return last }
        throw TerminalTestError("the pane never showed \"\(text)\"; it shows:\n\(last)")
    }

    var exitCode: Int32? {
        (try? String(contentsOf: directory.appendingPathComponent("rc"), encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    func waitForExit(seconds: Double = 10) -> Int32? {
        var rc: Int32?
        eventually(within: seconds, pollMs: 100) { rc = exitCode; return rc != nil }
        return rc
    }

    func file(_ name: String) -> String { (try? String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)) ?? "" }
}

struct TerminalTestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The built binary on a real terminal (tmux), as an on-call engineer would use it.
@Suite(.serialized) struct RealTerminal {
    var binary: String { meshtopBinary.path }

    @Test func demoViewsFilterDrillInAndQuit() throws {
        let pane = try TmuxPane(width: 100, height: 30, command: "\(binary) demo --rate 30")
        try pane.wait(for: "LIVE")
        // Rates need two scrapes; voting's failures put its edge in the worst-edge line.
        let overview = try pane.wait(for: "worst edge: web → voting")
        #expect(overview.contains("[1 Overview]") && overview.contains("SUCCESS"))
        try pane.send("3")
        // A capture can catch a frame half painted: wait for each piece rather than assert on one capture.
        try pane.wait(for: "[3 Graph]")
        try pane.wait(for: "▶")
        let graph = try pane.wait(for: "│ web")
        #expect(graph.contains("┌"))
        try pane.send("2")
        try pane.wait(for: "[2 Edges]")
        try pane.send("/", "v", "o", "t", "i", "Enter")
        try pane.wait(for: "filter: voti")
        let edges = try pane.wait(for: "voting   ")
        let rows = edges.split(separator: "\n").filter { $0.contains("%") && ($0.contains("✔") || $0.contains("✖") || $0.contains("▲")) }
        #expect(!rows.isEmpty && rows.allSatisfy { $0.contains("voting") }, "\(edges)")
        try pane.send("Enter")
        try pane.wait(for: "[4 Detail]")
        // Wait for the whole view (a capture can catch it half painted); the edge is one of voting's.
        let detail = try pane.wait(for: "latency (share")
        #expect(detail.contains("edge ") && detail.contains("voting"), "\(detail)")
        try pane.send("Escape")
        try pane.send(":", "t", "a", "p", "Enter")
        try pane.wait(for: "[6 Tap]")
        try pane.wait(for: "req out")
        try pane.send("q")
        #expect(pane.waitForExit() == 0)
        #expect(pane.file("stty-before") == pane.file("stty-after"), "the terminal's modes were not restored")
    }

    /// The canary demo opens on the Canary view and shows the verdict when it comes.
    @Test func canaryDemoShowsItsViewAndTheRollback() throws {
        let pane = try TmuxPane(width: 110, height: 34, command: "\(binary) demo --scenario canary")
        let first = try pane.wait(for: "[9 Canary]")
        #expect(first.contains("voting-canary against voting"))
        try pane.wait(for: "request-success-rate", seconds: 30)
        let verdict = try pane.wait(for: "ROLLED BACK", seconds: 60)
        #expect(verdict.contains("failed checks reached the threshold"), "\(verdict)")
        try pane.send("1")
        try pane.wait(for: "[1 Overview]")
        try pane.send("q")
        #expect(pane.waitForExit() == 0)
    }

    @Test func asciiUnderLangC() throws {
        let pane = try TmuxPane(width: 90, height: 26, command: "\(binary) demo --rate 20", environment: ["LANG": "C", "LC_ALL": "C"])
        try pane.wait(for: "LIVE")
        try pane.send("3")
        let graph = try pane.wait(for: "+------")
        #expect(graph.unicodeScalars.allSatisfy { $0.isASCII }, "non-ASCII on screen under LANG=C:\n\(graph)")
        try pane.send("q")
        #expect(pane.waitForExit() == 0)
    }

    @Test func noColorMeansNoColourEscapes() throws {
        let pane = try TmuxPane(width: 90, height: 26, command: "\(binary) demo --rate 20", environment: ["NO_COLOR": "1"])
        try pane.wait(for: "worst edge")
        let escaped = try pane.capture(escapes: true)
        // Colours are SGR 30-38/40-48/90-97/100-107: none may appear (39 and 49 reset to the
        // terminal's own colours, which is what NO_COLOR asks for); bold and reverse may.
        let sgr = escaped.matches(of: /\x{1B}\[([0-9;]*)m/).flatMap { $0.1.split(separator: ";").compactMap { Int($0) } }
        #expect(!sgr.contains { ((30...48).contains($0) && $0 != 39) || (90...107).contains($0) }, "colour escapes under NO_COLOR: \(Set(sgr).sorted())")
        #expect(sgr.contains(7) || sgr.contains(1), "meaning is carried by reverse/bold")
        try pane.send("q")
        #expect(pane.waitForExit() == 0)
    }

    @Test func sigtermRestoresTheTerminal() throws {
        let pane = try TmuxPane(width: 90, height: 26, command: "\(binary) demo --rate 21")
        try pane.wait(for: "LIVE")
        let pids = try runCommand("/usr/bin/pgrep", ["-f", "meshtop demo --rate 21"]).split(separator: "\n").compactMap { Int32($0) }
        #expect(!pids.isEmpty)
        for pid in pids { kill(pid, SIGTERM) }
        let rc = pane.waitForExit()
        #expect(rc == 143, "exit code after SIGTERM: \(String(describing: rc))")
        #expect(pane.file("stty-before") == pane.file("stty-after"), "stty -a differs after SIGTERM")
        #expect(!pane.file("stty-after").isEmpty)
    }

    @Test func tinyTerminalExplainsItself() throws {
        let pane = try TmuxPane(width: 40, height: 8, command: "\(binary) demo --rate 10")
        let screen = try pane.wait(for: "terminal too small")
        #expect(screen.contains("need 60x12, have 40x8"))
        try pane.tmux(["resize-window", "-t", "0", "-x", "100", "-y", "30"])
        try pane.wait(for: "[1 Overview]")
        try pane.send("q")
        #expect(pane.waitForExit() == 0)
    }
}

func runCommand(_ path: String, _ args: [String]) throws -> String {
    try spawn(path, args)
}

/// posix_spawn + waitpid, with standard output captured through a file.
func spawn(_ path: String, _ args: [String]) throws -> String {
    let output = FileManager.default.temporaryDirectory.appendingPathComponent("meshtop-spawn-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: output) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, output.path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    let argv: [UnsafeMutablePointer<CChar>?] = ([path] + args).map { strdup($0) } + [nil]
    defer { for a in argv { free(a) } }
    // The child starts with no signal blocked and default handlers: the test process blocks
    // most signals, and a tmux server that inherited that could never end its panes.
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var none = sigset_t()
    sigemptyset(&none)
    var all = sigset_t()
    sigfillset(&all)
    posix_spawnattr_setsigmask(&attributes, &none)
    posix_spawnattr_setsigdefault(&attributes, &all)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, path, &actions, &attributes, argv, environ)
    guard rc == 0 else { throw TerminalTestError("cannot run \(path): \(String(cString: strerror(rc)))") }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
    return (try? String(contentsOf: output, encoding: .utf8)) ?? ""
}
