import Foundation
import HummingbirdTesting
import JobQueue
import RedisClient
import RelocatorCore
import Synchronization
import Testing
import TestSupport
@testable import RelocatorAPI

/// The extremes suite's values in a real Redis, through the HTTP layer: nothing traps (a trap would
/// end the test process); every answer is 2xx, 4xx or 503. (RelocatorAPITests' ExtremesTests: the
/// numbers a request carries, and job fields at Int64's bounds in the memory queue.)
@Suite struct RedisExtremesAPITests {
    static let twoHours: Int64 = 2 * 3600 * 1000

    func expectAnswered(_ response: TestResponse, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let code = Int(response.status.code)
        #expect((200..<300).contains(code) || (400..<500).contains(code) || code == 503, "\(what): \(code) \(response.text.prefix(300))",
                sourceLocation: sourceLocation)
    }

    /// Values Redis holds that no script of ours writes (scores of 1e300 and infinity, counters at
    /// Int64's bounds, a heartbeat from the far past) and clocks two hours apart: every read route,
    /// the dashboard and /metrics answer, and hits stored by a clock two hours ahead decay nothing.
    @Test func redisValuesAtTheExtremesAndClocksTwoHoursApartTrapNothing() async throws {
        let offset = Mutex<Int64>(0)
        let api = try APIFixture(halfLife: .seconds(60), clock: { JobQueue.nowMilliseconds() + offset.withLock { $0 } })
        defer { api.tearDown() }
        try api.addContents([1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15].map { (Int64($0), "f\($0).bin", $0 >= 13 ? "silver" : "gold", nil) })
        let shard = api.queue.keys.shard(0), control = api.queue.keys.control
        let redis = api.redis
        let time = try redis.send("TIME").array!.compactMap(\.string).compactMap(Int64.init)
        let redisNow = time[0] * 1000 + time[1] / 1000
        // Scores, hit counters and counters Redis holds.
        for (cid, score) in [(11, "1e300"), (12, "9223372036854775808"), (13, "+inf"), (14, "-inf"), (15, "1e300"), (1, "-1e300")] {
            try redis.send("ZADD", shard.residents(cid >= 13 ? "silver" : "gold"), score, cid)
        }
        try redis.send("HSET", shard.hits, 1, "1e300:\(redisNow + Self.twoHours)", 2, "100:\(redisNow + Self.twoHours)", 3, "garbage",
                       4, "5:\(redisNow - Self.twoHours)")
        try redis.send("HSET", shard.stats, "moved", Int64.max, "committed", Int64.min, "moved_bytes", Int64.max)
        try redis.send("HSET", shard.movedAt, 1, Int64.min, 2, Int64.max)
        try redis.send("SADD", control.workers, "w-x")
        try redis.send("HSET", control.heartbeat("w-x"), "kind", "worker", "beat_at", Int64.min, "started_at", Int64.max,
                       "disks", "gold=9223372036854775807,-1,9223372036854775807;silver=-5,-5,0", "levels", "gold,silver", "concurrency", "99999999999999999999")
        try redis.send("HSET", shard.job(5), "cid", 5, "count", Int64.max, "filename", "f5.bin", "db_level", "silver", "target", "gold",
                       "status", "moving", "gen", 1, "attempts", Int64.max, "worker_id", "w-x", "bytes_done", Int64.max, "bytes_total", 1,
                       "started_at", Int64.min, "enqueued_at", Int64.max, "updated_at", Int64.min)
        try redis.send("LPUSH", shard.processing("w-x"), "5:1")
        try redis.send("HSET", shard.job(6), "cid", 6, "count", 0, "filename", "f6.bin", "db_level", "gold", "target", "silver",
                       "status", "dead", "gen", Int64.max, "attempts", 1, "updated_at", Int64.min, "enqueued_at", Int64.min, "last_error", "x")
        try redis.send("LPUSH", shard.dead, "6:\(Int64.max)")
        try redis.send("ZADD", shard.retry, "1e300", "7:1")
        try redis.send("LPUSH", shard.queue("gold"), "8:1")

        let began = ContinuousClock.now
        try await api.test { client in
            for jump in [-Self.twoHours, 0, Self.twoHours] {
                offset.withLock { $0 = jump }
                for path in ["/v1/queues", "/metrics", "/ui", "/ui/workers", "/ui/dead", "/ui/levels", "/ui/relocations", "/v1/dead",
                             "/v1/jobs/5", "/v1/jobs/6", "/v1/contents/1/why", "/v1/contents/12/why", "/v1/contents/5", "/readyz", "/healthz"] {
                    expectAnswered(try await client.get(path), "\(path) with the clock \(jump / 1000) s off")
                }
                for cid in 1...4 {
                    let hits = try await client.postJSON("/v1/contents/\(cid)/hits", #"{"n": 5}"#)
                    expectAnswered(hits, "hits of cid \(cid)")
                    let value = hits.json?["value"] as? Double ?? -1
                    #expect(value >= 0 && value <= Double(CountBound.max), "cid \(cid): \(hits.text)")
                }
                for cid in [1, 2, 11, 12, 13] {
                    expectAnswered(try await client.postForm("/post_sentence", "cid=\(cid)&count=9007199254740991"), "count of cid \(cid)")
                }
            }
        }
        // Stored by a clock two hours ahead, the counter grew by nothing but the hits (100, then 5 hits
        // three times), where 120 half-lives of a negative elapsed time made it 2^120 times larger.
        // The first 105 then decayed for at most the rounds' duration (seconds on a loaded machine)
        // on a 60 s half-life, and the last 5 not at all: at least 105 · 2^(−elapsed / 60 s) + 5.
        let elapsed = ContinuousClock.now - began
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let least = 105 * pow(2, -seconds / 60) + 5
        let stored = try redis.send("HGET", shard.hits, 2).string?.split(separator: ":").first.flatMap { Double($0) } ?? -1
        #expect(stored >= least - 0.01 && stored <= 115, "\(stored) after \(seconds) s (at least \(least))")
        let big = try redis.send("HGET", shard.hits, 1).string?.split(separator: ":").first.flatMap { Double($0) } ?? -1
        #expect(big > 8e15 && big <= Double(CountBound.max), "\(big)")
    }
}
