import Foundation
import JobQueue
import RedisClient
import RelocatorCore
import RelocatorServices
import RelocatorTesting
import SQLStore
import Testing
import TestSupport

/// The planner on a real Redis (a key prefix of the test's own) and a SQLite file, with a disk
/// report written as a worker's heartbeat writes it.
@Suite struct PlannerTests {
    /// Contents that reached a level without a recorded move (imported from the system Relocator
    /// replaces) are shed by an estimate of their size — the level's average — and the projected
    /// fill counts the same estimate: a level at 75 % with a 40 % low watermark is projected under
    /// it, not left at 75 %.
    @Test func theProjectedFillCountsTheEstimatedSizesOfContentsNeverMoved() throws {
        let mebibyte: Int64 = 1 << 20
        let database = try CommitterTests.Database(contents: (1...4).map { (Int64($0), "f\($0)", "gold") })
        defer { database.directory.remove() }
        let fixture = try RedisTestQueue("plan")
        defer { fixture.cleanUp() }
        let (queue, redis) = (fixture.queue, fixture.redis)
        let sql = try database.open()
        defer { sql.close() }
        _ = try LevelStore(database: sql).setPolicy(level: "gold", LevelPolicy.Edit(highWater: .set(60), lowWater: .set(40)))
        // Gold: 6 MiB used of 8 MiB (75 %) in four contents never moved, so about 1.5 MiB each.
        let report = DiskReport(decoding: "gold=\(6 * mebibyte),\(2 * mebibyte),\(8 * mebibyte)")
        try queue.heartbeat(worker: "w1", info: [.disks: report.encoded], ttl: .seconds(30), on: redis)

        let plan = try Planner(queue: RedisJobQueue(queue: queue, redis: redis), database: sql, halfLife: nil).plan(full: true)
        let shed = plan.moves.filter { $0.kind == .watermark && $0.from == "gold" && $0.to == "silver" }
        // 2.8 MiB must go to reach 40 %: two of the four.
        #expect(shed.count == 2, "\(plan.moves)")
        let gold = try #require(plan.levels.first { $0.level == "gold" })
        #expect(gold.outgoing == 3 * mebibyte, "\(gold)")
        let silver = try #require(plan.levels.first { $0.level == "silver" })
        #expect(silver.incoming == 3 * mebibyte, "\(silver)")
        #expect(try #require(gold.projectedPercent) <= 40, "\(gold)")
        // What the report says is available gives the fill as df prints it: 6 of 6 + 2 MiB, then 3 of 8.
        #expect(gold.available == 2 * mebibyte && gold.percent == 75 && gold.projectedPercent == 37.5, "\(gold)")
    }

    /// Gold above its high watermark whose directory is on the same filesystem as silver's (as a
    /// worker found them): a move down would free nothing there, and every round would find the
    /// disk as full and shed again, until every content had gone down. Gold is not shed, and the
    /// plan says why; on filesystems of their own it is.
    @Test func aLevelIsNotShedOntoALevelOnItsOwnFilesystem() throws {
        let mebibyte: Int64 = 1 << 20
        let database = try CommitterTests.Database(contents: (1...4).map { (Int64($0), "f\($0)", "gold") })
        defer { database.directory.remove() }
        let fixture = try RedisTestQueue("plan-shared")
        defer { fixture.cleanUp() }
        let (queue, redis) = (fixture.queue, fixture.redis)
        let sql = try database.open()
        defer { sql.close() }
        _ = try LevelStore(database: sql).setPolicy(level: "gold", LevelPolicy.Edit(highWater: .set(60), lowWater: .set(40)))
        let disk = "\(6 * mebibyte),\(2 * mebibyte),\(8 * mebibyte)"
        let shared = DiskReport(decoding: "gold=\(disk);silver=\(disk)", filesystems: "gold=2049;silver=2049")
        #expect(shared.sameFilesystem("gold", "silver"))
        try queue.heartbeat(worker: "w1", info: Heartbeat(id: "w1", kind: .worker, levels: ["gold", "silver"], disks: shared).fields,
                            ttl: .seconds(30), on: redis)
        let planner = Planner(queue: RedisJobQueue(queue: queue, redis: redis), database: sql, halfLife: nil)
        let plan = try planner.plan(full: true)
        #expect(!plan.moves.contains { $0.kind == .watermark }, "\(plan.moves)")
        #expect(plan.levels.first { $0.level == "gold" }?.sharesFilesystemWith == "silver")
        let summary = Planner.summary(of: plan, contents: [:])
        #expect(summary.levels.first { $0.level == "gold" }?.sharesFilesystemWith == "silver")

        let apart = DiskReport(decoding: "gold=\(disk);silver=\(disk)", filesystems: "gold=2049;silver=2050")
        try queue.heartbeat(worker: "w1", info: Heartbeat(id: "w1", kind: .worker, levels: ["gold", "silver"], disks: apart).fields,
                            ttl: .seconds(30), on: redis)
        let shedding = try planner.plan(full: true)
        #expect(shedding.moves.filter { $0.kind == .watermark && $0.from == "gold" }.count == 2, "\(shedding.moves)")
        #expect(shedding.levels.first { $0.level == "gold" }?.sharesFilesystemWith == nil)

        // Another worker has both on one volume (a test host), its disk less full: the worker whose
        // report gives gold's fill decides, and gold is shed all the same.
        let spare = DiskReport(decoding: "gold=1,\(7 * mebibyte),\(8 * mebibyte);silver=1,\(7 * mebibyte),\(8 * mebibyte)",
                               filesystems: "gold=2049;silver=2049")
        try queue.heartbeat(worker: "w2", info: Heartbeat(id: "w2", kind: .worker, levels: ["gold", "silver"], disks: spare).fields,
                            ttl: .seconds(30), on: redis)
        let still = try planner.plan(full: true)
        #expect(still.moves.filter { $0.kind == .watermark && $0.from == "gold" }.count == 2, "\(still.moves)")
    }

    /// A resident whose last job is dead (its file gone from the disk, say) is left to the operator:
    /// neither shed by a watermark nor demoted by a decay. Planned again every round, its move went
    /// dead again every round, and the dead letters grew for ever.
    @Test func aContentWhoseLastJobIsDeadIsNotPlannedAgain() throws {
        let mebibyte: Int64 = 1 << 20
        let database = try CommitterTests.Database(contents: (1...2).map { (Int64($0), "f\($0)", "gold") })
        defer { database.directory.remove() }
        let fixture = try RedisTestQueue("plan-dead")
        defer { fixture.cleanUp() }
        let (queue, redis) = (fixture.queue, fixture.redis)
        let sql = try database.open()
        defer { sql.close() }
        _ = try LevelStore(database: sql).setPolicy(level: "gold", LevelPolicy.Edit(highWater: .set(10), lowWater: .set(5)))
        try queue.heartbeat(worker: "w1", info: [.disks: DiskReport(decoding: "gold=\(6 * mebibyte),\(2 * mebibyte),\(8 * mebibyte)").encoded],
                            ttl: .seconds(30), on: redis)
        let counter = DecayingCounter(halfLife: .seconds(3600))
        for cid in 1...2 {
            try redis.send("ZADD", queue.keys.shard(of: Int64(cid)).residents("gold"), counter.score(5, at: JobQueue.nowMilliseconds()), cid)
        }
        try redis.send("HSET", queue.keys.shard(of: 1).job(1), JobField.status.rawValue, JobStatus.dead.rawValue, JobField.gen.rawValue, 7)
        let planner = Planner(queue: RedisJobQueue(queue: queue, redis: redis), database: sql, halfLife: .seconds(3600))
        let moves = try planner.plan(full: true).moves
        #expect(!moves.contains { $0.cid == 1 }, "\(moves)")
        #expect(moves.contains { $0.cid == 2 && $0.from == "gold" }, "the other is planned: \(moves)")
    }

    /// Counts decay by the clock that stamped them, Redis' (the newest heartbeat tells it), not by
    /// this host's: here Redis' clock is two hours behind the host's, as after a step of either,
    /// and a content at 20,000 an instant ago stays in gold. (Decayed by the host's clock, two
    /// half-lives had passed: 5,000, a decay demotion to silver.)
    @Test func countsDecayByTheQueuesClockNotThisHosts() throws {
        let database = try CommitterTests.Database(contents: [(1, "f1", "gold")])
        defer { database.directory.remove() }
        let fixture = try RedisTestQueue("plan-clock")
        defer { fixture.cleanUp() }
        let (queue, redis) = (fixture.queue, fixture.redis)
        let sql = try database.open()
        defer { sql.close() }
        let queueNow = JobQueue.nowMilliseconds() - 2 * 3_600_000
        try queue.heartbeat(worker: "w1", info: [:], ttl: .seconds(30), on: redis)
        try redis.send("HSET", queue.keys.control.heartbeat("w1"), WorkerField.beatAt.rawValue, queueNow)
        // A beat from before a step back of Redis' clock, not renewed yet: two hours ahead of it.
        try queue.heartbeat(worker: "w2", info: [:], ttl: .seconds(30), on: redis)
        try redis.send("HSET", queue.keys.control.heartbeat("w2"), WorkerField.beatAt.rawValue, queueNow + 2 * 3_600_000)
        let counter = DecayingCounter(halfLife: .seconds(3600))
        try redis.send("ZADD", queue.keys.shard(0).residents("gold"), counter.score(20_000, at: queueNow), 1)
        let planner = Planner(queue: RedisJobQueue(queue: queue, redis: redis), database: sql, halfLife: .seconds(3600))
        #expect(try planner.plan(full: true).moves.filter { $0.kind == .decay }.isEmpty)
        // Given the host's time, the same counts have decayed.
        #expect(try planner.plan(full: true, now: JobQueue.nowMilliseconds()).moves.contains { $0.kind == .decay && $0.cid == 1 && $0.to == "silver" })
    }

    /// `plan` reads the jobs a thousand at a time and only the open ones whole: past a chunk's end,
    /// every queued job is listed with its filename and every committed or dead one left out.
    @Test func everyOpenJobIsPlannedAcrossChunksAndNoClosedOne() throws {
        let database = try CommitterTests.Database(contents: [])
        defer { database.directory.remove() }
        let fixture = try RedisTestQueue("plan-chunks")
        defer { fixture.cleanUp() }
        let (queue, redis) = (fixture.queue, fixture.redis)
        let cids = Array(Int64(1)...2_345)
        for chunk in cids.chunks(of: 500) {
            _ = try queue.submitMany(chunk.map { (cid: $0, count: 50_000, filename: "f\($0).bin", dbLevel: "bronze", target: "gold", queuedBy: nil) },
                                     readAt: 0, on: redis)
        }
        // Every third job as the committer leaves it, every seventh as a dead one is.
        let committed = Set(cids.filter { $0 % 3 == 0 }), dead = Set(cids.filter { $0 % 7 == 0 && $0 % 3 != 0 })
        _ = try redis.pipeline(committed.map { RedisCommand("HSET", queue.keys.shard(of: $0).job($0), JobField.status.rawValue, "committed") }
            + dead.map { RedisCommand("HSET", queue.keys.shard(of: $0).job($0), JobField.status.rawValue, "dead") })
        let sql = try database.open()
        defer { sql.close() }

        let plan = try Planner(queue: fixture.session, database: sql, halfLife: nil).plan(full: true)
        let open = cids.filter { !committed.contains($0) && !dead.contains($0) }
        #expect(plan.moves.map(\.cid) == open)
        #expect(plan.moves.allSatisfy { $0.kind == .pending && $0.filename == "f\($0.cid).bin" && $0.from == "bronze" && $0.to == "gold" })
    }
}
