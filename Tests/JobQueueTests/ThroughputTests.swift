import Foundation
import JobQueue
import RelocatorCore
import Testing

/// Moves and commits per minute, counted in Redis by ack.lua and committed.lua (whoever moves or
/// commits, whether or not a dashboard is open), read back as the last hour.
@Suite struct ThroughputTests {
    @Test func everyAcknowledgedMoveAndEveryCommitCountsInItsMinute() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        for cid in Int64(1)...3 { try q.submit(cid) }
        for _ in 1...3 { try q.moveAndCommit(try #require(try q.fetch())) }
        let now = Int64(try q.redisNow())
        let read = try q.queue.throughput(now: now, window: 60, on: q.redis)
        #expect(read.moved.count == 60 && read.committed.count == 60)
        #expect(read.moved.last?.minute == now / 60_000)
        // The fixture's moves are of 1 byte each; a test that crosses a minute finds them in two.
        #expect(read.moved.reduce(0) { $0 + $1.count } == 3 && read.moved.reduce(0) { $0 + $1.bytes } == 3)
        #expect(read.committed.reduce(0) { $0 + $1.count } == 3)
        // A ring holds at most 120 fields, one per minute.
        let fields = try q.redis.send("HLEN", q.queue.keys.shard(0).movedPerMinute).int ?? 0
        #expect((1...2).contains(fields))
    }

    @Test func aRingsSlotWrittenALapAgoStartsAgainAndTheWindowSumsTheShards() {
        let minute: Int64 = 30_000_000
        var ring: [String: String] = [:]
        ThroughputRing.add(2, bytes: 10, now: (minute - 120) * 60_000, to: &ring)
        ThroughputRing.add(1, bytes: 5, now: minute * 60_000, to: &ring)
        // The same slot, a lap later: the old minute's counts are gone.
        #expect(ring == ["\(minute % 120)": "\(minute) 1 5"])
        var other: [String: String] = [:]
        ThroughputRing.add(4, bytes: 1, now: minute * 60_000 + 59_999, to: &other)
        ThroughputRing.add(1, bytes: 1, now: (minute - 59) * 60_000, to: &other)
        ThroughputRing.add(7, bytes: 1, now: (minute - 60) * 60_000, to: &other)  // outside the hour
        let window = ThroughputRing.window([ring, other, ["x": "junk", "3": "1 2"]], now: minute * 60_000 + 1, window: 60)
        #expect(window.count == 60 && window.first?.minute == minute - 59 && window.last?.minute == minute)
        #expect(window.last?.count == 5 && window.last?.bytes == 6 && window.first?.count == 1)
        #expect(window.reduce(0) { $0 + $1.count } == 6)
    }
}
