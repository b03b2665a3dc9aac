import Foundation
import RedisClient
import RelocatorCore
import Testing
import TestSupport

/// A host whose wall clock is two hours off, ahead or behind (Scripts/clock-shift.c shifts the
/// process's CLOCK_REALTIME, which is what a step of the clock leaves every deadline computed
/// before it): the services' waits run on the monotonic clock, so a worker and a committer keep
/// their pace. Waits on the wall clock made the one ahead sleep two hours (its heartbeat lapsed,
/// and the reaper would have given its moves away) and the one behind never sleep at all.
@Suite(.serialized) struct ClockStepTests {
    @Test(arguments: [7200, -7200])
    func aWorkerAndACommitterWhoseClockIsTwoHoursOffKeepTheirPace(shift: Int) throws {
        let root = try TemporaryDirectory("relocator-clock")
        defer { root.remove() }
        let shim = try buildShim("clock-shift", in: root.path)
        // A Redis of its own: the rate of commands below is this test's processes' alone.
        let redis = try RedisServer()
        defer { redis.stop() }
        for level in ["bronze", "silver", "gold"] {
            try FileManager.default.createDirectory(atPath: root.path + "/" + level, withIntermediateDirectories: true)
        }
        let cluster = try Cluster(redis: "redis://127.0.0.1:\(redis.port)/0", database: .sqlite(path: root.path + "/db.sqlite"),
                                  levels: ["bronze", "silver", "gold"].map { ($0, root.path + "/" + $0) },
                                  environment: ["RELOCATOR_HEARTBEAT_TTL_MS": "3000"])
        defer { cluster.stop() }
        for command in [["migrate"], ["levels", "--seed-default"]] {
            let result = try cluster.run(command)
            try #require(result.status == 0, "\(command): \(result.stderr)")
        }
        let shifted = ["LD_PRELOAD": shim, "CLOCK_SHIFT_SECONDS": String(shift)]
        try cluster.startWorker("w1", environment: shifted)
        try cluster.start("c1", ["committer", "--id", "c1", "--metrics-port", "0"], environment: shifted)

        // Each renews its heartbeat again and again (its time to live goes back up)…
        let connection = RedisConnection(url: redis.url)
        defer { connection.close() }
        let keys = ["w1", "c1"].map { "\(cluster.prefix)worker:\($0)" }
        func ttls() throws -> [Int] { try keys.map { try connection.send("PTTL", $0).int ?? -2 } }
        func commands() throws -> Int64 {
            let text = try connection.send("INFO", "stats").string ?? ""
            let line = text.split(whereSeparator: \.isNewline).first { $0.hasPrefix("total_commands_processed:") }
            return Int64(line?.split(separator: ":").last ?? "") ?? 0
        }
        try cluster.waitUntil("both heartbeats", timeout: .seconds(30)) { try ttls().allSatisfy { $0 > 0 } }
        let started = ContinuousClock.now
        let before = try commands()
        var last = try ttls()
        var renewals = [0, 0]
        try cluster.waitUntil("five renewals of each heartbeat", timeout: .seconds(60)) {
            let now = try ttls()
            for index in now.indices {
                guard now[index] > 0 else {
                    throw ClusterError("the heartbeat of \(keys[index]) lapsed after \(renewals[index]) renewals:\n\(cluster.log(index == 0 ? "w1" : "c1"))")
                }
                if now[index] > last[index] { renewals[index] += 1 }
            }
            last = now
            return renewals.allSatisfy { $0 >= 5 }
        }
        // …and no faster than its pace: idle, the two send tens of commands a second (a loop whose
        // sleeps all returned at once sent thousands).
        let elapsed = ContinuousClock.now - started
        let rate = Double(try commands() - before) / max(0.001, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        #expect(rate < 1000, "\(rate) commands/s while idle")
    }

    /// `status` on a host two hours ahead of Redis: a job queued a moment ago has waited a moment,
    /// by the queue's clock that stamped it (by this host's it had waited two hours, and the alert
    /// on the oldest wait fired).
    @Test func theOldestWaitAndTheHeartbeatsAreMeasuredOnTheQueuesClock() throws {
        let root = try TemporaryDirectory("relocator-clock-status")
        defer { root.remove() }
        let shim = try buildShim("clock-shift", in: root.path)
        let cli = try CLIWorkspace(environment: ["LD_PRELOAD": shim, "CLOCK_SHIFT_SECONDS": "7200"])
        defer { cli.stop() }
        #expect(try cli.run(["migrate"]).status == 0)
        #expect(try cli.run(["levels", "--seed-default"]).status == 0)
        #expect(try cli.run(["contents", "add", "--cid", "1", "--filename", "a.mp4", "--level", "bronze"]).status == 0)
        #expect(try cli.run(["enqueue", "--cid", "1", "--count", "20000"]).status == 0)
        let status = try #require(try cli.run(["status", "--json"]).json() as? [String: Any])
        let gold = try #require((status["levels"] as? [[String: Any]])?.first { $0["name"] as? String == "gold" })
        let age = try #require(gold["oldest_age_seconds"] as? Double, "\(gold)")
        #expect(age < 600, "\(gold)")
        // A heartbeat's age too: Redis' clock stamped it.
        cli.environment["RELOCATOR_LEVELS"] = try cli.makeLevels()
        try cli.start("w1", ["worker", "--id", "w1", "--concurrency", "1", "--metrics-port", "0"])
        var worker: [String: Any] = [:]
        try cli.waitUntil("the worker's heartbeat") {
            let workers = (try cli.run(["status", "--json"]).json() as? [String: Any])?["workers"] as? [[String: Any]]
            worker = workers?.first { $0["id"] as? String == "w1" } ?? [:]
            return worker["heartbeat_age_seconds"] is Double
        }
        #expect((worker["heartbeat_age_seconds"] as? Double ?? .infinity) < 600, "\(worker)")
    }
}
