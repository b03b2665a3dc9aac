import Foundation
import Testing
import TestSupport

/// `relocator why` over a real move, and the metrics server of a worker and a committer.
@Suite struct WhyAndMetricsTests {
    func committed(_ cli: CLIWorkspace, cid: Int) throws {
        var last: ProcessResult?
        do {
            try cli.waitUntil("the commit of cid \(cid)") {
                last = try cli.run(["relocations", "--cid", String(cid)])
                return last?.lines.count == 2
            }
        } catch {
            Issue.record("the last `relocations --cid \(cid)`: \(String(describing: last))")
            throw error
        }
    }

    @Test func whySaysWhereAContentIsAndShowsAnEarlierAttemptsErrorAsHistory() throws {
        let cli = try LiveCommandTests.workspace()
        defer { cli.stop() }
        try cli.start("committer", ["committer", "--id", "c1"])
        // The first move fails once after publishing; the retry finishes it.
        try cli.start("w1", ["worker", "--id", "w1", "--concurrency", "1"], environment: ["RELOCATOR_FAULTS": "fail-after=published*1"])
        #expect(try cli.run(["enqueue", "--cid", "1", "--count", "20000"]).status == 0)
        try committed(cli, cid: 1)

        let text = try cli.run(["why", "1"])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.hasPrefix("cid 1 (present.mp4) is on gold according to the database. The file is there on disk."), "\(text.stdout)")
        #expect(text.stdout.contains("The last count, 20000, falls in gold (10000–99999)."), "\(text.stdout)")
        #expect(text.stdout.contains("It was queued by relocator enqueue; its target: count 20000 falls in gold (10000–99999)."), "\(text.stdout)")
        let goldDisk = try #require(text.lines.first { $0.hasPrefix("gold ") && $0.contains(cli.levelPath("gold")) })
        #expect(goldDisk.contains(" file ") && goldDisk.contains("4096"), "\(goldDisk)")
        #expect(text.stdout.contains(", committed, count 20000, attempts 1"), "\(text.stdout)")
        #expect(text.stdout.contains("  earlier error (history): "), "\(text.stdout)")
        #expect(!text.stdout.contains("last error"), "\(text.stdout)")
        #expect(text.lines.contains { $0.contains("bronze") && $0.contains("gold") && $0.contains("4096") && $0.contains("w1") })

        let json = try #require(try cli.run(["why", "1", "--json"]).json() as? [String: Any])
        #expect(json["content_level"] as? String == "gold")
        #expect(json["found_on"] as? [String] == ["gold"])
        #expect(json["count_level"] as? String == "gold")
        #expect((json["history"] as? [[String: Any]])?.count == 1)
        let job = try #require(json["job"] as? [String: Any])
        #expect(job["status"] as? String == "committed")
        #expect(job["last_error"] is NSNull)
        #expect(job["earlier_error"] is String)

        let unknown = try cli.run(["why", "99"])
        #expect(unknown.status == 1)
        #expect(unknown.errorLines.count == 1 && unknown.stderr.contains("no content with cid 99"), "\(unknown.stderr)")
        #expect(try cli.run(["why", "0"]).status == 64)
    }

    /// With a half-life, a level's residents hold decaying scores: `why` reads them as counts, as
    /// the API's why does (it once printed the raw score, about half a million).
    @Test func whyShowsTheDecayedCountWhenCountsHaveAHalfLife() throws {
        let cli = try LiveCommandTests.workspace()
        defer { cli.stop() }
        let decaying = ["RELOCATOR_HALF_LIFE": "1h"]
        // A count of bronze for a content on bronze: no job, only its residents' score says it.
        #expect(try cli.run(["enqueue", "--cid", "1", "--count", "500"], environment: decaying).status == 0)
        let json = try #require(try cli.run(["why", "1", "--json"], environment: decaying).json() as? [String: Any])
        #expect(json["job"] is NSNull, "\(json)")
        let count = try #require(json["last_count"] as? Int, "\(json)")
        #expect(count >= 495 && count <= 500, "\(json)")
    }

    /// On a host whose clock is two hours ahead, the count decays on the queue's clock (told by a
    /// live heartbeat, as the planner's), not on the host's: with a half-life of an hour it read a
    /// quarter of itself.
    @Test func whyDecaysTheCountOnTheQueuesClock() throws {
        let cli = try LiveCommandTests.workspace()
        defer { cli.stop() }
        let decaying = ["RELOCATOR_HALF_LIFE": "1h"]
        #expect(try cli.run(["enqueue", "--cid", "1", "--count", "500"], environment: decaying).status == 0)
        try cli.start("w1", ["worker", "--id", "w1", "--concurrency", "1", "--metrics-port", "0"], environment: decaying)
        try cli.waitUntil("the worker's heartbeat") { try cli.run(["status"]).stdout.contains("w1") }
        let ahead = decaying.merging(["LD_PRELOAD": try buildShim("clock-shift", in: cli.path), "CLOCK_SHIFT_SECONDS": "7200"]) { $1 }
        let json = try #require(try cli.run(["why", "1", "--json"], environment: ahead).json() as? [String: Any])
        let count = try #require(json["last_count"] as? Int, "\(json)")
        #expect(count >= 490 && count <= 500, "\(json)")
    }

    @Test func whyWithoutLevelDirectoriesLeavesTheDisksOutAndNeverCreatesTheDatabase() throws {
        let empty = try CLIWorkspace()
        defer { empty.stop() }
        let none = try empty.run(["why", "1"])
        #expect(none.status == 1 && none.stderr.contains("no database"), "\(none.stderr)")
        #expect(!FileManager.default.fileExists(atPath: empty.databasePath))

        let cli = try LiveCommandTests.workspace()
        defer { cli.stop() }
        let result = try cli.run(["why", "2"], environment: ["RELOCATOR_LEVELS": ""])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("It has no job."), "\(result.stdout)")
        #expect(!result.stdout.contains("directory"), "\(result.stdout)")
    }

    /// Starts a command and returns the port its metrics server logged (on by default).
    func metricsPort(_ cli: CLIWorkspace, _ name: String, _ arguments: [String]) throws -> (ChildProcess, Int) {
        let process = try cli.start(name, arguments)
        var port: Int?
        try cli.waitUntil("the metrics server of \(name)") {
            if let match = cli.stderr(name).firstMatch(of: /metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/) { port = Int(match.1) }
            return port != nil || !process.isRunning
        }
        return (process, try #require(port, "\(cli.stderr(name))"))
    }

    /// The processes of `status --json` by id.
    func processes(_ cli: CLIWorkspace) throws -> [String: [String: Any]] {
        let workers = try #require(try cli.run(["status", "--json"]).json() as? [String: Any])["workers"] as? [[String: Any]] ?? []
        return Dictionary(workers.compactMap { worker in (worker["id"] as? String).map { ($0, worker) } }, uniquingKeysWith: { $1 })
    }

    @Test func aWorkerAndACommitterServeTheirMetricsByDefaultOnPortsFrom9464() throws {
        let cli = try LiveCommandTests.workspace()
        defer { cli.stop() }
        // The first move fails once (a retry with its reason), then succeeds.
        let (workerProcess, workerPort) = try metricsPort(cli, "w1", ["worker", "--id", "w1", "--concurrency", "1"])
        let (committerProcess, committerPort) = try metricsPort(cli, "c1", ["committer", "--id", "c1", "--rebalance-interval", "1s"])
        for port in [workerPort, committerPort] { #expect(metricsPorts.contains(port), "\(port)") }
        #expect(workerPort != committerPort)
        // Each heartbeat carries its port: status shows it.
        try cli.waitUntil("the ports in the heartbeats") {
            let all = try processes(cli)
            return all["w1"]?["metrics_port"] as? Int == workerPort && all["c1"]?["metrics_port"] as? Int == committerPort
        }
        let text = try cli.run(["status"])
        #expect(text.lines.contains { $0.hasPrefix("w1 ") && $0.hasSuffix(":\(workerPort)") }, "\(text.stdout)")

        #expect(try cli.run(["enqueue", "--cid", "1", "--count", "20000"]).status == 0)
        try committed(cli, cid: 1)
        let worker = try HTTP.get(workerPort, "/metrics")
        #expect(worker.status == 200)
        #expect(worker.body.contains(#"relocator_moves_total{from="bronze",to="gold",outcome="moved"} 1"#), "\(worker.body)")
        // One filesystem here: the worker's log says linked, and so does the metric.
        #expect(cli.stderr("w1").contains("job.method=linked"), "\(cli.stderr("w1"))")
        #expect(worker.body.contains(#"relocator_move_duration_seconds_count{method="linked"} 1"#), "\(worker.body)")
        #expect(worker.body.contains(#"relocator_build_info{version=""#) && worker.body.contains("process_cpu_seconds_total"))
        // The cost of the job, phase by phase (a link, no copy).
        for phase in ["next", "prepare", "copy", "queue", "publish", "target_directory_fsync", "remove_source", "source_directory_fsync", "ack"] {
            #expect(worker.body.contains(#"relocator_move_phase_seconds_count{phase="\#(phase)"}"#), "\(phase): \(worker.body)")
        }
        var committer = try HTTP.get(committerPort, "/metrics")
        #expect(committer.status == 200)
        #expect(committer.body.contains("relocator_commits_total 1"), "\(committer.body)")
        try cli.waitUntil("a rebalancer round") {
            committer = try HTTP.get(committerPort, "/metrics")
            return committer.body.contains(#"relocator_rebalancer_rounds_total{outcome="done"}"#)
        }
        #expect(committer.body.contains("relocator_rebalancer_last_round_timestamp_seconds "), "\(committer.body)")
        #expect(try HTTP.get(committerPort, "/healthz").status == 200)
        // SIGTERM stops the metrics server with the worker and the committer.
        for process in [workerProcess, committerProcess] { process.signal(SIGTERM) }
        #expect(workerProcess.wait(timeout: .seconds(20)) == 0, "\(cli.stderr("w1"))")
        #expect(committerProcess.wait(timeout: .seconds(20)) == 0, "\(cli.stderr("c1"))")
    }

    @Test func aFailedMoveIsCountedWithItsReason() throws {
        let cli = try LiveCommandTests.workspace()
        defer { cli.stop() }
        let (_, port) = try metricsPort(cli, "w1", ["worker", "--id", "w1", "--concurrency", "1"])
        try cli.start("c1", ["committer", "--id", "c1", "--metrics-port", "0"])
        // cid 2's file is on no disk: a permanent failure.
        #expect(try cli.run(["enqueue", "--cid", "2", "--count", "20000"]).status == 0)
        try cli.waitUntil("the dead job") {
            try HTTP.get(port, "/metrics").body.contains(#"relocator_moves_total{from="bronze",to="gold",outcome="dead",reason="source_missing"} 1"#)
        }
    }

    @Test func metricsPortZeroServesNoMetrics() throws {
        let cli = try LiveCommandTests.workspace()
        defer { cli.stop() }
        let worker = try cli.start("w1", ["worker", "--id", "w1", "--concurrency", "1", "--metrics-port", "0"])
        try cli.waitUntil("the worker's start") { cli.stderr("w1").contains("started") || !worker.isRunning }
        #expect(!cli.stderr("w1").contains("metrics on"))
        try cli.waitUntil("the heartbeat") { try processes(cli)["w1"] != nil }
        #expect(try processes(cli)["w1"]?["metrics_port"] is NSNull)
        let refused = try cli.run(["worker", "--metrics-port", "0", "--metrics-host", "0.0.0.0"])
        #expect(refused.status == 64 && refused.stderr.contains("--metrics-host needs a metrics server; --metrics-port 0 turns it off"), "\(refused.stderr)")
    }

}

/// The ports a worker or committer tries for its metrics.
let metricsPorts = 9464...9563
