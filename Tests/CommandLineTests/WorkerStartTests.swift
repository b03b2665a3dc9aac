import Foundation
import Testing
import TestSupport

/// What a worker checks at start: that no other live process beats under its `--id` (while a
/// restart under the id of a run that died keeps working), and that the levels it serves are in
/// the level table.
@Suite struct WorkerStartTests {
    static let host = ProcessInfo.processInfo.hostName

    /// `redis-cli` on the test Redis, in the workspace's key prefix.
    func redis(_ cli: CLIWorkspace, _ arguments: [String]) throws -> String {
        let url = try #require(cli.environment["REDIS_URL"])
        let port = try #require(url.firstMatch(of: /:(\d+)(\/\d+)?$/).flatMap { Int($0.1) }, "\(url)")
        return try RedisProcesses.cli(port: port, arguments)
    }

    /// A heartbeat under `id` as another machine's worker writes it.
    func beat(_ cli: CLIWorkspace, _ id: String, at: Int64, ttlMilliseconds: Int = 1500) throws {
        let key = cli.prefix + "worker:" + id
        try redis(cli, ["SADD", cli.prefix + "workers", id])
        try redis(cli, ["HSET", key, "kind", "worker", "host", "another-machine", "pid", "1", "beat_at", String(at)])
        try redis(cli, ["PEXPIRE", key, String(ttlMilliseconds)])
    }

    func worker(_ id: String) -> [String] { ["worker", "--id", id, "--concurrency", "1", "--metrics-port", "0"] }

    @Test func aWorkerRefusesTheIdOfAnotherLiveWorkerOfThisMachine() throws {
        let cli = try LiveCommandTests.workspace()
        defer { cli.stop() }
        let first = try cli.start("w1", worker("w1"))
        try cli.waitUntil("the first worker's start") { cli.stderr("w1").contains("started") }
        let second = try cli.run(worker("w1"))
        #expect(second.status == 1)
        #expect(second.errorLines.count == 1, "\(second.stderr)")
        #expect(second.stderr.hasPrefix("Error: worker id 'w1' is in use: a worker on \(Self.host) (pid \(first.pid)) renewed its heartbeat after this worker started; give this one another --id, or stop that one first"),
                "\(second.stderr)")
        #expect(first.isRunning)
    }

    /// Workers and committers share one namespace of ids: a committer given a live worker's id is
    /// refused. It started before, overwrote the worker's heartbeat, and as it stopped handed the
    /// worker's move in flight back to the queue without a fence.
    @Test func aCommitterRefusesTheIdOfALiveWorker() throws {
        let cli = try LiveCommandTests.workspace()
        defer { cli.stop() }
        let first = try cli.start("w1", worker("w1"))
        try cli.waitUntil("the worker's start") { cli.stderr("w1").contains("started") }
        // (Started, not run: a committer that took the id would run until stopped.)
        let committer = try cli.start("c-w1", ["committer", "--id", "w1", "--metrics-port", "0"])
        try cli.waitUntil("the committer's refusal", timeout: .seconds(60)) { !committer.isRunning }
        let stderr = cli.stderr("c-w1")
        #expect(committer.status == 1 && stderr.split(separator: "\n").count == 1, "\(stderr)")
        #expect(stderr.hasPrefix("Error: committer id 'w1' is in use: a worker on \(Self.host) (pid \(first.pid)) renewed its heartbeat after this committer started"),
                "\(stderr)")
        #expect(first.isRunning)
    }

    /// The half-life the counts are kept with is recorded by the first committer or API; one whose
    /// RELOCATOR_HALF_LIFE differs refuses to start, saying which to keep. (Turned on later, every
    /// count kept without it read as a decayed score near 0: the committer demoted every content.)
    @Test func aCommitterOrAnAPIWithAnotherHalfLifeThanTheCountsRefusesToStart() throws {
        let cli = try LiveCommandTests.workspace()
        defer { cli.stop() }
        let first = try cli.start("c1", ["committer", "--id", "c1", "--metrics-port", "0"])
        try cli.waitUntil("the first committer's start") { cli.stderr("c1").contains("started") }
        #expect(first.stop() == 0)
        let expected = "RELOCATOR_HALF_LIFE: the counts in Redis are kept with RELOCATOR_HALF_LIFE unset, and this process has it=1d: "
            + "every count would read as another (contents would move for it); keep RELOCATOR_HALF_LIFE unset on every process"
        for (name, command) in [("c2", ["committer", "--id", "c2", "--metrics-port", "0"]), ("api", ["serve", "--port", "0"])] {
            let process = try cli.start(name, command, environment: ["RELOCATOR_HALF_LIFE": "1d"])
            try cli.waitUntil("\(name) refuses to start", timeout: .seconds(60)) { !process.isRunning }
            #expect(process.status == 1, "\(cli.stderr(name))")
            #expect(cli.stderr(name).contains(expected), "\(cli.stderr(name))")
        }
        // The same setting starts.
        let again = try cli.start("c3", ["committer", "--id", "c3", "--metrics-port", "0"])
        try cli.waitUntil("the same setting's start") { cli.stderr("c3").contains("started") }
        #expect(again.isRunning)
    }

    @Test func aWorkerRefusesAnIdWhoseHeartbeatAnotherMachineRenews() throws {
        let cli = try LiveCommandTests.workspace()
        defer { cli.stop() }
        try beat(cli, "w9", at: 1)
        let second = try cli.start("w9", worker("w9"))
        // The other machine beats on while this worker watches.
        var at: Int64 = 2
        try cli.waitUntil("the refusal") {
            try beat(cli, "w9", at: at)
            at += 1
            return !second.isRunning
        }
        #expect(second.wait(timeout: .seconds(5)) == 1)
        #expect(cli.stderr("w9").contains("worker id 'w9' is in use: a worker on another-machine (pid 1) renewed its heartbeat"), "\(cli.stderr("w9"))")
    }

    @Test func aWorkerRestartedUnderItsIdAfterAKillGivesBackWhatTheDeadRunHeldAtOnce() throws {
        let cli = try LiveCommandTests.workspace()
        defer { cli.stop() }
        try cli.start("c1", ["committer", "--id", "c1", "--metrics-port", "0"])
        // The first run stops for a minute once the file is published: it holds the job when it is killed.
        let first = try cli.start("first", worker("w1"), environment: ["RELOCATOR_FAULTS": "pause-after=published:60000"])
        #expect(try cli.run(["enqueue", "--cid", "1", "--count", "20000"]).status == 0)
        try cli.waitUntil("the first run to hold the job") {
            (try cli.run(["status", "--json"]).json() as? [String: Any])?["processing"] as? Int == 1
        }
        first.crash()
        #expect(first.wait(timeout: .seconds(10)) != nil)
        // Its heartbeat has not expired: a process of this machine that no longer exists.
        try cli.start("second", worker("w1"))
        try cli.waitUntil("the restart") { cli.stderr("second").contains("gave back 1 jobs held by an earlier run of this worker") }
        try cli.waitUntil("the commit") { try cli.run(["relocations", "--cid", "1"]).lines.count == 2 }
    }

    @Test func aWorkerTakesOverTheIdOfAStoppedProcessOnceItsHeartbeatIsNotRenewed() throws {
        let cli = try LiveCommandTests.workspace()
        defer { cli.stop() }
        let first = try cli.start("first", worker("w1"))
        try cli.waitUntil("the first worker's start") { cli.stderr("first").contains("started") }
        first.signal(SIGSTOP)
        defer { first.signal(SIGCONT) }
        try cli.waitUntil("the stop") { first.isStopped }
        // Alive but silent (a paused VM, SIGSTOP): its heartbeat lapses and the id is free again.
        let second = try cli.start("second", worker("w1"))
        try cli.waitUntil("the second start") { cli.stderr("second").contains("started") || !second.isRunning }
        #expect(second.isRunning, "\(cli.stderr("second"))")
    }

    @Test func aWorkerWarnsOnceOfALevelTheLevelTableDoesNotHave() throws {
        let cli = try LiveCommandTests.workspace()
        defer { cli.stop() }
        try FileManager.default.createDirectory(atPath: cli.path + "/levels/platinum", withIntermediateDirectories: true)
        let levels = try #require(cli.environment["RELOCATOR_LEVELS"]) + ",platinum=\(cli.path)/levels/platinum"
        // The committer publishes the level table each round.
        try cli.start("c1", ["committer", "--id", "c1", "--rebalance-interval", "1s", "--metrics-port", "0"])
        let worker = try cli.start("w1", worker("w1"), environment: ["RELOCATOR_LEVELS": levels])
        let warning = "this worker serves level 'platinum', which the level table does not have (it has bronze, silver, gold)"
        try cli.waitUntil("the warning") { cli.stderr("w1").contains(warning) }
        // Several more rounds of its maintenance (each reads the published table again), then a stop.
        let beats = try heartbeat(cli, "w1")
        try cli.waitUntil("three more heartbeats") { try heartbeat(cli, "w1") >= beats + 3 * 500 }
        worker.signal(SIGTERM)
        #expect(worker.wait(timeout: .seconds(20)) == 0)
        #expect(cli.stderr("w1").components(separatedBy: warning).count == 2, "\(cli.stderr("w1"))")
        #expect(!cli.stderr("w1").contains("level 'gold', which"))
    }

    /// When `id` last beat (ms), from its heartbeat.
    func heartbeat(_ cli: CLIWorkspace, _ id: String) throws -> Int64 {
        Int64(try redis(cli, ["HGET", cli.prefix + "worker:" + id, "beat_at"])) ?? 0
    }
}
