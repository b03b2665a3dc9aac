import Foundation
import JobQueue
import RedisClient
import RelocatorCore
import Testing
import TestSupport

/// A pause is enforced where jobs are taken, inside the take and claim scripts of every shard: it
/// holds from the moment `pause` returns, also for a worker slot already blocked on the queue.
@Suite struct PauseTests {
    @Test func aPauseHoldsForASlotAlreadyWaitingOnTheQueueInEveryShard() throws {
        let q = try QueueFixture(shards: 3)
        defer { q.cleanUp() }
        let cid: Int64 = 5
        let shard = q.queue.keys.shardIndex(of: cid)
        // A slot waits on gold's queue of the content's shard (BRPOPLPUSH) before the pause.
        let waiter = RedisConnection(url: q.redis.url)
        defer { waiter.close() }
        let taken = BlockingExecutor.shared.start {
            try q.queue.waitForWork(worker: "w1", shard: shard, level: "gold", timeout: .seconds(20), on: waiter)
        }
        try RedisProcesses.waitUntil("the slot to block on gold's queue") {
            try q.redis.send("CLIENT", "LIST").string?.contains("cmd=brpoplpush") == true
        }
        try q.queue.pause(level: "gold", on: q.redis)
        // Every shard's copy holds the pause, and `status` shows it.
        for index in 0..<3 { #expect(try q.redis.send("SISMEMBER", q.queue.keys.shard(index).paused, "gold") == .integer(1)) }
        #expect(try q.queue.paused(on: q.redis) == ["gold"])

        // A count 0 ms later: the waiting slot takes its id, and the claim puts it back untouched.
        try q.submit(cid)
        let id = try #require(try taken.wait())
        #expect(try q.queue.claim(id, worker: "w1", on: q.redis) == .paused)
        #expect(try q.job(cid)?.status == .queued)
        #expect(try q.list(q.queue.keys.shard(shard).queue("gold")) == [id.id])
        #expect(try q.list(q.queue.keys.shard(shard).processing("w1")).isEmpty)
        // A slot that looks without blocking takes nothing from the paused level, in any shard.
        for index in 0..<3 { #expect(try q.queue.take(worker: "w2", shard: index, levels: ["gold"], on: q.redis) == nil) }

        try q.queue.resume(level: "gold", on: q.redis)
        for index in 0..<3 { #expect(try q.redis.send("SISMEMBER", q.queue.keys.shard(index).paused, "gold") == .integer(0)) }
        let job = try #require(try q.fetch())
        #expect(job.cid == cid && job.status == .moving)
    }
}
