import Foundation
import JobQueue
import RedisClient
import RelocatorCore
import Testing
import TestSupport

/// The Lua scripts against the real Redis, each test under a key prefix of its own.
@Suite struct JobQueueTests {
    let queue = JobQueue(keys: RedisKeys(prefix: "{\(TestEnvironment.uniqueName("jq"))}"))
    let levels = ["gold", "silver", "bronze"]

    func redis() throws -> RedisConnection { RedisConnection(url: try TestEnvironment.redisURL()) }

    func cleanUp(_ redis: RedisConnection) throws {
        let keys = try redis.send("KEYS", queue.keys.prefix + "*").array?.compactMap(\.string) ?? []
        if !keys.isEmpty { try redis.send(RedisCommand(["DEL"] + keys)) }
    }

    func list(_ key: String, _ redis: RedisConnection) throws -> [String] {
        try redis.send("LRANGE", key, 0, -1).array?.compactMap(\.string) ?? []
    }

    @Test func aSubmissionQueuesOneJobOnItsTargetsQueue() throws {
        let r = try redis()
        defer { try? cleanUp(r) }
        let submitted = try queue.submit(cid: 7, count: 1964, filename: "g.mp4", dbLevel: "bronze", target: "silver", on: r)
        #expect(submitted.outcome == .created)
        let job = try #require(submitted.job)
        #expect(job.status == .queued && job.target == "silver" && job.dbLevel == "bronze" && job.attempts == 0)
        #expect(try list(queue.keys.queue("silver"), r) == [job.id])
        #expect(try queue.job(cid: 7, on: r) == job)
    }

    @Test func aContentAlreadyOnItsLevelIsNotQueued() throws {
        let r = try redis()
        defer { try? cleanUp(r) }
        let submitted = try queue.submit(cid: 1, count: 5, filename: "a", dbLevel: "bronze", target: "bronze", on: r)
        #expect(submitted.outcome == .inPlace)
        #expect(try queue.job(cid: 1, on: r) == nil)
        #expect(try list(queue.keys.queue("bronze"), r).isEmpty)
    }

    @Test func twoCountsInQuickSuccessionGiveOneMoveToTheLatestTarget() throws {
        let r = try redis()
        defer { try? cleanUp(r) }
        _ = try queue.submit(cid: 3, count: 20000, filename: "c.mkv", dbLevel: "bronze", target: "gold", on: r)
        let second = try queue.submit(cid: 3, count: 2000, filename: "c.mkv", dbLevel: "bronze", target: "silver", on: r)
        #expect(second.outcome == .retargeted)
        // Same target again: only the count changes.
        #expect(try queue.submit(cid: 3, count: 2500, filename: "c.mkv", dbLevel: "bronze", target: "silver", on: r).outcome == .updated)
        let job = try #require(try queue.fetch(worker: "w1", levels: levels, on: r))
        #expect(job.target == "silver" && job.count == 2500 && job.status == .moving && job.workerID == "w1")
        // The stale gold id was skipped and cleaned away; nothing else to take.
        #expect(try queue.fetch(worker: "w1", levels: levels, on: r) == nil)
        #expect(try list(queue.keys.processing("w1"), r) == [job.id])
        #expect(try list(queue.keys.queue("gold"), r).isEmpty)
    }

    @Test func aQueuedJobAimedBackAtItsLevelIsDropped() throws {
        let r = try redis()
        defer { try? cleanUp(r) }
        _ = try queue.submit(cid: 4, count: 20000, filename: "d", dbLevel: "bronze", target: "gold", on: r)
        #expect(try queue.submit(cid: 4, count: 3, filename: "d", dbLevel: "bronze", target: "bronze", on: r).outcome == .dropped)
        #expect(try queue.fetch(worker: "w1", levels: levels, on: r) == nil)
        #expect(try queue.job(cid: 4, on: r) == nil)
    }

    @Test func aDroppedJobHandsItsTemporaryFileToTheCleanUp() throws {
        let r = try redis()
        defer { try? cleanUp(r) }
        _ = try queue.submit(cid: 13, count: 20000, filename: "m", dbLevel: "bronze", target: "gold", on: r)
        // A delivery crashed mid-copy (its part recorded), the job went back to the queue…
        try r.send("HSET", queue.keys.job(13), "part", "/data/ssd/.m.relocator-13-1.part")
        // …and a new count says the file is where it belongs.
        #expect(try queue.submit(cid: 13, count: 5, filename: "m", dbLevel: "bronze", target: "bronze", on: r).outcome == .dropped)
        #expect(try queue.staleParts(on: r) == ["/data/ssd/.m.relocator-13-1.part"])
        try queue.forgetStalePart("/data/ssd/.m.relocator-13-1.part", on: r)
        #expect(try queue.staleParts(on: r).isEmpty)
    }

    @Test func theHappyPathToCommitted() throws {
        let r = try redis()
        defer { try? cleanUp(r) }
        _ = try queue.submit(cid: 5, count: 20000, filename: "e", dbLevel: "bronze", target: "gold", on: r)
        let job = try #require(try queue.fetch(worker: "w1", levels: ["gold"], on: r))
        #expect(try queue.ack(job, worker: "w1", checksum: "abc", bytes: 42, on: r))
        #expect(try list(queue.keys.processing("w1"), r).isEmpty)
        #expect(try list(queue.keys.done, r) == [job.id])
        let batch = try queue.takeDone(committer: "c1", max: 10, on: r)
        #expect(batch.map(\.id) == [job.id])
        #expect(batch[0].job?.status == .done && batch[0].job?.checksum == "abc" && batch[0].job?.bytes == 42)
        // Taking again (a crash before the commit) hands out the same batch.
        #expect(try queue.takeDone(committer: "c1", max: 10, on: r).map(\.id) == [job.id])
        #expect(try queue.markCommitted(ids: [job.id], from: "c1", ttl: .seconds(60), on: r) == 0)
        #expect(try queue.job(cid: 5, on: r)?.status == .committed)
        #expect(try r.send("TTL", queue.keys.job(5)).int.map { $0 > 0 && $0 <= 60 } == true)
        #expect(try list(queue.keys.committing("c1"), r).isEmpty)
        // Committing twice (a batch delivered again) changes nothing.
        #expect(try queue.markCommitted(ids: [job.id], from: "c1", ttl: .seconds(60), on: r) == 0)
        #expect(try queue.job(cid: 5, on: r)?.status == .committed)
    }

    @Test func aLevelReadBeforeTheLastCommitIsOverruledAndOneReadAfterItStands() throws {
        let r = try redis()
        defer { try? cleanUp(r) }
        let before = JobQueue.nowMilliseconds() - 60_000
        _ = try queue.submit(cid: 14, count: 20000, filename: "n", dbLevel: "bronze", target: "gold", on: r)
        let job = try #require(try queue.fetch(worker: "w1", levels: ["gold"], on: r))
        try queue.ack(job, worker: "w1", checksum: "x", bytes: 1, on: r)
        _ = try queue.takeDone(committer: "c1", max: 10, on: r)
        try queue.markCommitted(ids: [job.id], from: "c1", ttl: .seconds(60), on: r)
        // A cached view from before the commit still says bronze: the file is on gold now.
        #expect(try queue.submit(cid: 14, count: 30000, filename: "n", dbLevel: "bronze", target: "gold", readAt: before, on: r).outcome == .inPlace)
        // The database, read now, says bronze (an operator moved it back): that stands.
        let again = try queue.submit(cid: 14, count: 30000, filename: "n", dbLevel: "bronze", target: "gold",
                                     readAt: JobQueue.nowMilliseconds() + 1000, on: r)
        #expect(again.outcome == .created && again.job?.dbLevel == "bronze")
    }

    @Test func aCountDuringTheMoveFollowsUpAfterCommit() throws {
        let r = try redis()
        defer { try? cleanUp(r) }
        _ = try queue.submit(cid: 6, count: 20000, filename: "f", dbLevel: "bronze", target: "gold", on: r)
        let job = try #require(try queue.fetch(worker: "w1", levels: ["gold"], on: r))
        let during = try queue.submit(cid: 6, count: 1500, filename: "f", dbLevel: "bronze", target: "silver", on: r)
        #expect(during.outcome == .followUp)
        #expect(during.job?.status == .moving && during.job?.nextTarget == "silver")
        try queue.ack(job, worker: "w1", checksum: "x", bytes: 1, on: r)
        _ = try queue.takeDone(committer: "c1", max: 10, on: r)
        #expect(try queue.markCommitted(ids: [job.id], from: "c1", ttl: .seconds(60), on: r) == 1)
        let next = try #require(try queue.fetch(worker: "w2", levels: ["silver"], on: r))
        #expect(next.dbLevel == "gold" && next.target == "silver" && next.gen > job.gen && next.nextTarget == nil)
    }

    @Test func failuresRetryThenDieAndReplayStartsAfresh() throws {
        let r = try redis()
        defer { try? cleanUp(r) }
        _ = try queue.submit(cid: 8, count: 20000, filename: "h", dbLevel: "bronze", target: "gold", on: r)
        var job = try #require(try queue.fetch(worker: "w1", levels: ["gold"], on: r))
        #expect(try queue.fail(job, worker: "w1", error: "EROFS", permanent: false, delay: .seconds(30), maxAttempts: 2, on: r) == .retrying)
        let score = try #require(try r.send("ZSCORE", queue.keys.retry, job.id).string.flatMap(Double.init))
        let redisNow = try r.send("TIME").array!.compactMap(\.int)
        let nowMs = Double(redisNow[0]) * 1000 + Double(redisNow[1]) / 1000
        #expect(score > nowMs + 25_000 && score <= nowMs + 30_000)
        // Not due yet: nothing moves.
        #expect(try queue.promoteDueRetries(on: r) == 0)
        try r.send("ZADD", queue.keys.retry, 0, job.id)
        #expect(try queue.promoteDueRetries(on: r) == 1)
        job = try #require(try queue.fetch(worker: "w1", levels: ["gold"], on: r))
        #expect(job.attempts == 1 && job.lastError == "EROFS")
        #expect(try queue.fail(job, worker: "w1", error: "EROFS again", permanent: false, delay: .zero, maxAttempts: 2, on: r) == .dead)
        #expect(try queue.deadJobs(on: r).map(\.id) == [job.id])
        #expect(try queue.job(cid: 8, on: r)?.status == .dead)

        #expect(try queue.dead(.dryRun, cids: nil, on: r) == [job.id])
        #expect(try queue.deadJobs(on: r).count == 1)
        #expect(try queue.dead(.replay, cids: [8], on: r) == [job.id])
        let replayed = try #require(try queue.fetch(worker: "w1", levels: ["gold"], on: r))
        #expect(replayed.attempts == 0 && replayed.lastError == nil)
    }

    @Test func aPermanentFailureGoesStraightToDeadAndPurgeRemovesIt() throws {
        let r = try redis()
        defer { try? cleanUp(r) }
        _ = try queue.submit(cid: 9, count: 20000, filename: "i", dbLevel: "bronze", target: "gold", on: r)
        let job = try #require(try queue.fetch(worker: "w1", levels: ["gold"], on: r))
        #expect(try queue.fail(job, worker: "w1", error: "source missing", permanent: true, delay: .zero, maxAttempts: 5, on: r) == .dead)
        #expect(try queue.job(cid: 9, on: r)?.attempts == 1)
        #expect(try queue.dead(.purge, cids: nil, on: r) == [job.id])
        #expect(try queue.deadJobs(on: r).isEmpty)
        #expect(try queue.job(cid: 9, on: r) == nil)
    }

    @Test func theReaperGivesBackTheJobsOfAWorkerWhoseHeartbeatStopped() throws {
        let r = try redis()
        defer { try? cleanUp(r) }
        _ = try queue.submit(cid: 10, count: 20000, filename: "j", dbLevel: "bronze", target: "gold", on: r)
        try queue.heartbeat(worker: "dying", ttl: .milliseconds(150), on: r)
        try queue.heartbeat(worker: "alive", ttl: .seconds(60), on: r)
        let job = try #require(try queue.fetch(worker: "dying", levels: ["gold"], on: r))
        #expect(try queue.reapDeadWorkers(grace: .milliseconds(200), on: r) == 0)
        // Wait for the heartbeat to expire, on the condition itself.
        let deadline = ContinuousClock.now + .seconds(5)
        while try r.send("EXISTS", queue.keys.heartbeat("dying")).int == 1, ContinuousClock.now < deadline { usleep(20_000) }
        // First seen missing: only marked.
        #expect(try queue.reapDeadWorkers(grace: .milliseconds(200), on: r) == 0)
        #expect(try r.send("EXISTS", queue.keys.suspect("dying")).int == 1)
        usleep(250_000)
        #expect(try queue.reapDeadWorkers(grace: .milliseconds(200), on: r) == 1)
        #expect(try list(queue.keys.processing("dying"), r).isEmpty)
        #expect(try r.send("SMEMBERS", queue.keys.workers) == .array([.bulk(Array("alive".utf8))]))
        let again = try #require(try queue.fetch(worker: "alive", levels: ["gold"], on: r))
        #expect(again.id == job.id && again.attempts == 0)
        // The dead worker's late ack no longer counts.
        #expect(try !queue.ack(job, worker: "dying", checksum: "x", bytes: 1, on: r))
    }

    @Test func aWorkerThatRenewsItsHeartbeatWithinTheGraceIsNotReaped() throws {
        let r = try redis()
        defer { try? cleanUp(r) }
        _ = try queue.submit(cid: 12, count: 20000, filename: "l", dbLevel: "bronze", target: "gold", on: r)
        try queue.heartbeat(worker: "w1", ttl: .seconds(60), on: r)
        let job = try #require(try queue.fetch(worker: "w1", levels: ["gold"], on: r))
        // As after a Redis restart: the heartbeat is gone, the worker is alive.
        try r.send("DEL", queue.keys.heartbeat("w1"))
        #expect(try queue.reapDeadWorkers(grace: .milliseconds(100), on: r) == 0)
        try queue.heartbeat(worker: "w1", ttl: .seconds(60), on: r)
        usleep(150_000)
        #expect(try queue.reapDeadWorkers(grace: .milliseconds(100), on: r) == 0)
        #expect(try r.send("EXISTS", queue.keys.suspect("w1")).int == 0)
        #expect(try list(queue.keys.processing("w1"), r) == [job.id])
    }

    @Test func aBlockingTakeIsClaimedByFetch() throws {
        let r = try redis()
        defer { try? cleanUp(r) }
        #expect(try queue.waitForWork(worker: "w1", level: "gold", timeout: .seconds(1), on: r) == nil)
        _ = try queue.submit(cid: 11, count: 20000, filename: "k", dbLevel: "bronze", target: "gold", on: r)
        let id = try #require(try queue.waitForWork(worker: "w1", level: "gold", timeout: .seconds(1), on: r))
        // Taken but not claimed: a release (the worker stopping now) puts it back.
        #expect(try queue.release(worker: "w1", on: r) == 1)
        #expect(try list(queue.keys.queue("gold"), r) == [id])
        let again = try #require(try queue.waitForWork(worker: "w1", level: "gold", timeout: .seconds(1), on: r))
        let job = try #require(try queue.fetch(worker: "w1", levels: [], taken: again, on: r))
        #expect(job.id == id && job.status == .moving)
    }

    @Test func statsCountEveryList() throws {
        let r = try redis()
        defer { try? cleanUp(r) }
        try queue.heartbeat(worker: "w1", ttl: .seconds(60), on: r)
        for cid in 1...3 { _ = try queue.submit(cid: Int64(cid), count: 20000, filename: "f\(cid)", dbLevel: "bronze", target: "gold", on: r) }
        _ = try queue.submit(cid: 4, count: 2000, filename: "f4", dbLevel: "bronze", target: "silver", on: r)
        _ = try queue.fetch(worker: "w1", levels: ["gold"], on: r)
        let stats = try queue.stats(levels: levels, on: r)
        #expect(stats.queues.map(\.0) == levels && stats.queues.map(\.1) == [2, 1, 0])
        #expect(stats.processing == 1 && stats.workers == 1 && stats.aliveWorkers == 1 && stats.dead == 0)
        #expect(stats.inFlight == 4)
    }

    @Test func aHashWithNullsOrMissingFieldsIsNotAJob() {
        #expect(Job(hash: ["cid": "7", "filename": "null", "db_level": "a", "target": "b", "status": "queued", "gen": "1"]) == nil)
        #expect(Job(hash: ["cid": "7", "filename": "f", "db_level": "a", "target": "b", "status": "weird", "gen": "1"]) == nil)
        #expect(Job(hash: ["cid": "7", "filename": "f", "db_level": "a", "target": "b", "status": "queued", "gen": "1"])?.id == "7:1")
    }
}
