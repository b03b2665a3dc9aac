@testable import JobQueue
@testable import RedisClient
import RelocatorCore
import Testing
import TestSupport

/// Replaying dead letters costs round trips per thousand jobs, not per job.
@Suite struct DeadReplayCostTests {
    @Test func replayingFortyDeadJobsTakesAFewRoundTripsAndReplaysEachOnce() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        for cid in Int64(1)...40 {
            try q.submit(cid)
            let job = try #require(try q.fetch(levels: ["gold"]))
            #expect(try q.fail(job, reason: "source_missing", permanent: true) == .dead)
        }
        let before = q.redis.router.nodeConnections.map(\.batchesSent).reduce(0, +)
        let results = try q.queue.dead(.replay, cids: nil, by: "test", on: q.redis)
        let trips = q.redis.router.nodeConnections.map(\.batchesSent).reduce(0, +) - before
        #expect(results.count == 40 && results.allSatisfy { $0.outcome == .replayed })
        // The dead list (a page or two), the levels of all forty in one pipeline, the script for
        // all forty in the next: two round trips per job would be eighty.
        #expect(trips <= 6, "\(trips) round trips")
        for cid in Int64(1)...40 { #expect(try q.job(cid)?.status == .queued) }
        #expect(try q.queue.deadJobs(on: q.redis).isEmpty)
    }
}
