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
    }
}
