import Foundation
import JobQueue
import Logging
import RedisClient
import RelocatorCore
@testable import RelocatorServices
import SQLStore
import Testing
import TestSupport

/// The extremes suite for the committer's side: the planner (`relocator plan`), the rebalancer's
/// rounds and the committer, fed scores of 1e300, 2^63 and infinity, disk reports and policies at
/// Int64's bounds, a waiting job whose count is Int64.max, and clocks two hours off. A trap ends
/// the test process; here nothing may trap (the committer used to crash-loop with SIGILL on one
/// resident scored 2^63).
@Suite struct ExtremesTests {
    static let twoHours: Int64 = 2 * 3600 * 1000

    @Test func thePlannerTheRebalancerAndTheCommitterTrapOnNoScoreReportPolicyOrClock() throws {
        let database = try CommitterTests.Database(contents: (1...6).map { ($0, "f\($0)", "gold") } + (7...10).map { ($0, "f\($0)", "silver") }
            + [(12, "f12", "bronze")])
        defer { database.directory.remove() }
        let fixture = try RedisTestQueue("extremes")
        defer { fixture.cleanUp() }
        let (queue, url, redis) = (fixture.queue, fixture.url, fixture.redis)
        let sql = try database.open()
        defer { sql.close() }
        let levels = LevelStore(database: sql)
        _ = try levels.setPolicy(level: "gold", LevelPolicy.Edit(highWater: .set(10), lowWater: .set(5), minResidency: .set(Int64.max),
                                                                  hysteresis: .set(100), maxMoves: .set(Int.max), bandwidth: .set(Int64.max),
                                                                  priority: .set(Int.max)))
        _ = try levels.setPolicy(level: "silver", LevelPolicy.Edit(highWater: .set(50), minResidency: .set(Int64.max), hysteresis: .set(50)))
        _ = try sql.execute("UPDATE level SET max_counts = \(Int64.max) WHERE content_level = \("gold")")
        let shard = queue.keys.shard(0)
        for (level, cid, score) in [("gold", 1, "1e300"), ("gold", 2, "9223372036854775808"), ("gold", 3, "+inf"), ("gold", 4, "-inf"),
                                    ("gold", 5, "0"), ("gold", 6, "-1e300"), ("silver", 7, "1e300"), ("silver", 8, "9223372036854775808"),
                                    ("silver", 9, "5"), ("silver", 10, "+inf")] {
            try redis.send("ZADD", shard.residents(level), score, cid)
        }
        try queue.heartbeat(worker: "w1", info: [.disks: "gold=9223372036854775807,0,9223372036854775807;silver=9223372036854775807,-1,1"],
                            ttl: .seconds(60), on: redis)
        try queue.heartbeat(worker: "w2", info: [.disks: "gold=-9223372036854775808,0,1;bronze=0,0,0"], ttl: .seconds(60), on: redis)
        // A job waiting for room whose count is Int64.max, and one that can never fit.
        for (cid, reason) in [(10, "gold would be at 1e300 % (high watermark 10 %)"), (12, Placement.doesNotFitPrefix + "a file of 8EiB cannot fit")] {
            try redis.send("HSET", shard.job(Int64(cid)), "cid", cid, "count", Int64.max, "filename", "f\(cid)", "db_level", cid == 12 ? "bronze" : "silver",
                           "target", "gold", "status", "deferred", "gen", 1, "attempts", 0, "defer_reason", reason, "due_at", Int64.max,
                           "enqueued_at", Int64.min, "updated_at", Int64.max)
            try redis.send("ZADD", shard.deferred, "1e300", "\(cid):1")
        }

        let now = JobQueue.nowMilliseconds()
        for halfLife in [nil, Duration.seconds(60)] {
            for jump in [-Self.twoHours, 0, Self.twoHours] {
                let plan = try Planner(queue: RedisJobQueue(queue: queue, redis: redis), database: sql, halfLife: halfLife).plan(full: true, now: now + jump)
                #expect(plan.moves.allSatisfy { ($0.count ?? 0) <= Double(CountBound.max) }, "\(plan.moves)")
                _ = try JSONEncoder().encode(plan)
            }
        }
        for halfLife in [nil, Duration.seconds(60)] {
            var settings = Rebalancer.Settings(id: "c1", halfLife: halfLife)
            settings.interval = .milliseconds(100)
            let rebalancer = Rebalancer(settings: settings, driver: RedisJobQueueDriver(queue: queue, url: url), openDatabase: { try database.open() },
                                        logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
            let session = RedisJobQueue(queue: queue, redis: redis)
            var inFlight = try rebalancer.round(session, sql, inFlight: [:])
            inFlight = try rebalancer.round(session, sql, inFlight: inFlight)
            _ = try rebalancer.round(session, sql, inFlight: inFlight.mapValues { Rebalancer.Leaving(from: $0.from, bytes: Int64.max) })
        }
        // The one that can never fit went to the dead letters; the snapshot the workers read holds the policies.
        #expect(try queue.job(cid: 12, on: redis)?.status == .dead)
        let snapshot = try PlacementSnapshot(decoding: try #require(try queue.placementSnapshot(on: redis)))
        #expect(snapshot.countPolicy.residencies["gold"] == .seconds(Int64.max))
        #expect(snapshot.countPolicy.residencies["gold"]!.milliseconds == Int64.max)

        // The committer writes a done job whose numbers are at Int64's bounds.
        try redis.send("HSET", shard.job(9), "cid", 9, "count", Int64.max, "filename", "f9", "db_level", "silver", "target", "gold",
                       "status", "done", "gen", 1, "attempts", Int64.max, "checksum", "xxh128:00", "bytes", Int64.max, "worker_id", "w1",
                       "enqueued_at", Int64.min, "updated_at", Int64.max, "started_at", Int64.min)
        try redis.send("LPUSH", shard.done, "9:1")
        var settings = Committer.Settings(id: "c-extremes", batch: 10, jobTTL: .seconds(60), heartbeatTTL: .milliseconds(300))
        settings.idleWait = .milliseconds(50)
        let committer = Committer(settings: settings, driver: RedisJobQueueDriver(queue: queue, url: url), openDatabase: { try database.open() },
                                  logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        let done = StopSignal()
        BlockingExecutor.thread(named: "test-committer") {
            do { try committer.runBlocking() } catch { Issue.record("the committer failed: \(error)") }
            done.raise()
        }
        try waitUntil("the job committed") { try queue.job(cid: 9, on: redis)?.status == .committed }
        committer.stop()
        #expect(done.wait(for: .seconds(10)))
        #expect(try database.level(9) == "gold")
        #expect(try database.relocations().first { $0.cid == 9 }?.bytes == Int64.max)
    }
}
