import Foundation
import JobQueue
import RedisClient
import RelocatorCore
import Testing
import TestSupport

/// The life cycle's Lua scripts against the real Redis, each test under a key prefix of its own.
@Suite struct JobQueueTests {
    @Test func aSubmissionQueuesOneJobOnItsTargetsQueue() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        let submitted = try q.queue.submit(cid: 7, count: 1964, filename: "g.mp4", dbLevel: "bronze", target: "silver", on: q.redis)
        #expect(submitted.outcome == .created)
        let job = try #require(submitted.job)
        #expect(job.status == .queued && job.target == "silver" && job.dbLevel == "bronze" && job.attempts == 0)
        #expect(try q.list(q.shard.queue("silver")) == [job.id])
        #expect(try q.job(7) == job)
    }

    @Test func aContentAlreadyOnItsLevelIsNotQueued() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        #expect(try q.submit(1, 5, to: "bronze").outcome == .inPlace)
        #expect(try q.job(1) == nil)
        #expect(try q.list(q.shard.queue("bronze")).isEmpty)
    }

    @Test func twoCountsInQuickSuccessionGiveOneMoveToTheLatestTarget() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        try q.submit(3, 20000, to: "gold")
        #expect(try q.submit(3, 2000, to: "silver").outcome == .retargeted)
        // Same target again: only the count changes.
        #expect(try q.submit(3, 2500, to: "silver").outcome == .updated)
        let job = try #require(try q.fetch())
        #expect(job.target == "silver" && job.count == 2500 && job.status == .moving && job.workerID == "w1")
        // The stale gold id was skipped and removed; nothing else to take.
        #expect(try q.fetch() == nil)
        #expect(try q.list(q.shard.processing("w1")) == [job.id])
        #expect(try q.list(q.shard.queue("gold")).isEmpty)
    }

    @Test func aQueuedJobAimedBackAtItsLevelIsDropped() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        try q.submit(4, 20000, to: "gold")
        #expect(try q.submit(4, 3, to: "bronze").outcome == .dropped)
        #expect(try q.fetch() == nil)
        #expect(try q.job(4) == nil)
    }

    /// The committer writes a content's level only from a higher generation than the last it wrote:
    /// a content's generations must only grow, whatever Redis' clock does and however long ago its
    /// last job expired.
    @Test func aContentsNextJobHasAHigherGenerationWhateverRedisClockSaysAndAfterItsJobExpired() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        try q.submit(13, 20000, to: "gold")
        let first = try #require(try q.fetch())
        try q.moveAndCommit(first)
        // The committed job's hash expires, and Redis' clock is now two hours behind the last move.
        try q.redis.send("DEL", q.shard.job(13))
        let ahead = Int64(try q.redisNow()) + 2 * 3_600_000
        try q.redis.send("HSET", q.shard.gens, 13, ahead)
        #expect(try q.submit(13, 5, from: "gold", to: "bronze", readAt: JobQueue.freshRead).outcome == .created)
        let second = try #require(try q.job(13))
        #expect(second.gen == ahead + 1)
        // Re-aimed, reversed or followed up: always higher again.
        #expect(try q.submit(13, 2000, from: "gold", to: "silver", readAt: JobQueue.freshRead).outcome == .retargeted)
        #expect(try #require(try q.job(13)).gen == ahead + 2)
    }

    /// Counts coalesced into a waiting job leave its id on the queue once: a second copy would be a
    /// second delivery of one job.
    @Test func coalescedCountsLeaveTheJobsIdOnItsQueueOnce() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        try q.submit(17, 20000, to: "gold")
        for count in [25000, 30000, 20001] { #expect(try q.submit(17, Int64(count), to: "gold").outcome == .updated) }
        let job = try #require(try q.job(17))
        #expect(try q.list(q.shard.queue("gold")) == [job.id])
        #expect(job.count == 20001)
    }

    @Test func theHappyPathToCommitted() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        try q.submit(5)
        let job = try #require(try q.fetch(levels: ["gold"]))
        let id = JobID(cid: 5, gen: job.gen)
        #expect(try q.queue.ack(id, worker: "w1", token: job.deliveryToken, checksum: "xxh128:abc", bytes: 42, foundIn: nil, on: q.redis))
        #expect(try q.list(q.shard.processing("w1")).isEmpty)
        #expect(try q.list(q.shard.done) == [job.id])
        let batch = try q.queue.takeDone(committer: "c1", shard: 0, max: 10, on: q.redis)
        #expect(batch.map(\.id) == [job.id])
        let done = try #require(Job(hash: batch[0].fields))
        #expect(done.status == .done && done.checksum == "xxh128:abc" && done.bytes == 42)
        // Taking again (a crash before the commit) hands out the same batch.
        #expect(try q.queue.takeDone(committer: "c1", shard: 0, max: 10, on: q.redis).map(\.id) == [job.id])
        let levels = ["gold", "silver", "bronze"]
        #expect(try q.queue.markCommitted(ids: [job.id], shard: 0, committer: "c1", ttl: .seconds(60), levels: levels, on: q.redis).followUps == 0)
        #expect(try q.job(5)?.status == .committed)
        #expect(try q.redis.send("TTL", q.shard.job(5)).int.map { $0 > 0 && $0 <= 60 } == true)
        #expect(try q.list(q.shard.committing("c1")).isEmpty)
        // Committing twice (a batch delivered again) changes nothing.
        #expect(try q.queue.markCommitted(ids: [job.id], shard: 0, committer: "c1", ttl: .seconds(60), levels: levels, on: q.redis).followUps == 0)
        #expect(try q.job(5)?.status == .committed)
        let totals = try q.queue.stats(levels: levels, on: q.redis).totals
        #expect(totals[.moved] == 1 && totals[.movedBytes] == 42 && totals[.committed] == 1)
    }

    @Test func aLevelReadBeforeTheLastCommitIsOverruledAndOneReadAfterItStands() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        let before = JobQueue.nowMilliseconds() - 60_000
        try q.submit(14)
        try q.moveAndCommit(try #require(try q.fetch()))
        // A cached view from before the commit still says bronze: the file is on gold now.
        #expect(try q.submit(14, 30000, readAt: before).outcome == .inPlace)
        // The database, read now, says bronze (an operator moved it back): that stands.
        let again = try q.submit(14, 30000, readAt: JobQueue.nowMilliseconds() + 1000)
        #expect(again.outcome == .created && again.job?.dbLevel == "bronze")
    }

    @Test func aCountDuringTheMoveFollowsUpAfterCommit() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        try q.submit(6)
        let job = try #require(try q.fetch(levels: ["gold"]))
        let during = try q.submit(6, 1500, to: "silver")
        #expect(during.outcome == .followUp)
        #expect(during.job?.status == .moving && during.job?.nextTarget == "silver")
        try q.moveAndCommit(job)
        let next = try #require(try q.fetch("w2", levels: ["silver"]))
        #expect(next.dbLevel == "gold" && next.target == "silver" && next.gen > job.gen && next.nextTarget == nil)
    }

    @Test func aFollowUpToALevelTheCommitterDoesNotKnowIsReportedNotLost() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        try q.submit(16)
        let job = try #require(try q.fetch())
        try q.submit(16, 1, to: "platinum")
        #expect(try q.queue.ack(JobID(cid: 16, gen: job.gen), worker: "w1", token: job.deliveryToken, checksum: "x", bytes: 1, foundIn: nil, on: q.redis))
        let batch = try q.queue.takeDone(committer: "c1", shard: 0, max: 10, on: q.redis)
        let result = try q.queue.markCommitted(ids: batch.map(\.id), shard: 0, committer: "c1", ttl: .seconds(60),
                                               levels: ["gold", "bronze"], on: q.redis)
        #expect(result.followUps == 0 && result.unknownLevel == [job.id])
        #expect(try q.job(16)?.status == .committed)
    }

    @Test func failuresRetryThenDieAndReplayStartsAfresh() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        try q.submit(8)
        var job = try #require(try q.fetch(levels: ["gold"]))
        #expect(try q.fail(job, reason: "read_only", delay: .seconds(30), maxAttempts: 2) == .retrying)
        let score = try #require(try q.redis.send("ZSCORE", q.shard.retry, job.id).string.flatMap(Double.init))
        let now = try q.redisNow()
        #expect(score > now + 25_000 && score <= now + 30_000)
        // Not due yet: nothing moves.
        #expect(try q.queue.promoteDue(on: q.redis) == 0)
        try q.redis.send("ZADD", q.shard.retry, 0, job.id)
        #expect(try q.queue.promoteDue(on: q.redis) == 1)
        job = try #require(try q.fetch(levels: ["gold"]))
        #expect(job.attempts == 1 && job.lastError == "read_only: test" && job.reason == "read_only")
        #expect(try q.fail(job, reason: "read_only", maxAttempts: 2) == .dead)
        #expect(try q.queue.deadJobs(on: q.redis).map(\.id) == [job.id])
        #expect(try q.job(8)?.status == .dead)
        let replayed = try q.queue.dead(.replay, cids: [8], on: q.redis)
        #expect(replayed.map(\.id) == [job.id] && replayed.map(\.outcome) == [.replayed])
        let again = try #require(try q.fetch(levels: ["gold"]))
        #expect(again.attempts == 0 && again.lastError == nil && again.earlierError == "read_only: test")
    }

    @Test func aPermanentFailureGoesStraightToDeadAndPurgeRemovesIt() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        try q.submit(9)
        let job = try #require(try q.fetch(levels: ["gold"]))
        #expect(try q.fail(job, reason: "source_missing", permanent: true) == .dead)
        #expect(try q.job(9)?.attempts == 1)
        #expect(try q.queue.dead(.purge, cids: nil, on: q.redis).map(\.outcome) == [.purged])
        #expect(try q.queue.deadJobs(on: q.redis).isEmpty)
        #expect(try q.job(9) == nil)
        // Acting on a cid that is not dead says so.
        #expect(try q.queue.dead(.purge, cids: [9], on: q.redis).isEmpty)
    }

    @Test func theReaperGivesBackTheJobsOfAWorkerWhoseHeartbeatStopped() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        try q.submit(10)
        let control = q.queue.keys.control
        try q.queue.heartbeat(worker: "dying", info: [:], ttl: .milliseconds(150), on: q.redis)
        try q.queue.heartbeat(worker: "alive", info: [:], ttl: .seconds(60), on: q.redis)
        let job = try #require(try q.fetch("dying", levels: ["gold"]))
        #expect(try q.queue.reap(grace: .milliseconds(200), on: q.redis) == 0)
        let deadline = ContinuousClock.now + .seconds(5)
        while try q.redis.send("EXISTS", control.heartbeat("dying")).int == 1, ContinuousClock.now < deadline { usleep(20_000) }
        // First seen missing: only marked.
        #expect(try q.queue.reap(grace: .milliseconds(200), on: q.redis) == 0)
        #expect(try q.redis.send("EXISTS", control.suspect("dying")).int == 1)
        usleep(250_000)
        #expect(try q.queue.reap(grace: .milliseconds(200), on: q.redis) == 1)
        #expect(try q.list(q.shard.processing("dying")).isEmpty)
        #expect(try q.redis.send("SMEMBERS", control.workers) == .array([.bulk(Array("alive".utf8))]))
        let again = try #require(try q.fetch("alive", levels: ["gold"]))
        #expect(again.id == job.id && again.attempts == 0)
        // The dead worker's late ack and progress no longer count.
        #expect(try !q.record(job, worker: "dying", [(.stage, MoveStage.publishing.rawValue)]))
        #expect(try !q.queue.ack(JobID(cid: 10, gen: job.gen), worker: "dying", token: job.deliveryToken, checksum: "x", bytes: 1, foundIn: nil, on: q.redis))
    }

    @Test func aWorkerThatRenewsItsHeartbeatWithinTheGraceIsNotReaped() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        try q.submit(12)
        try q.queue.heartbeat(worker: "w1", info: [.kind: "worker"], ttl: .seconds(60), on: q.redis)
        let job = try #require(try q.fetch(levels: ["gold"]))
        // As after a Redis restart: the heartbeat is gone, the worker is alive.
        try q.redis.send("DEL", q.queue.keys.control.heartbeat("w1"))
        #expect(try q.queue.reap(grace: .milliseconds(100), on: q.redis) == 0)
        try q.queue.heartbeat(worker: "w1", info: [.kind: "worker"], ttl: .seconds(60), on: q.redis)
        usleep(150_000)
        #expect(try q.queue.reap(grace: .milliseconds(100), on: q.redis) == 0)
        #expect(try q.redis.send("EXISTS", q.queue.keys.control.suspect("w1")).int == 0)
        #expect(try q.list(q.shard.processing("w1")) == [job.id])
    }

    /// The heartbeat is stamped by Redis' clock, whatever the process's clock (or what it passes) says.
    @Test func aHeartbeatIsStampedByRedisClock() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        let before = try q.redisNow()
        try q.queue.heartbeat(worker: "w1", info: [.kind: "worker", .beatAt: "1"], ttl: .seconds(60), on: q.redis)
        let after = try q.redisNow()
        let stamped = try #require(try q.redis.send("HGET", q.queue.keys.control.heartbeat("w1"), WorkerField.beatAt.rawValue).string.flatMap(Double.init))
        #expect(stamped >= before.rounded(.down) && stamped <= after.rounded(.up))
        #expect(try q.redis.send("HGET", q.queue.keys.control.heartbeat("w1"), WorkerField.kind.rawValue).string == "worker")
        #expect(try q.queue.liveWorkers(on: q.redis).keys.sorted() == ["w1"])
    }

    /// A field the process no longer reports goes (a level back in service leaves status).
    @Test func aHeartbeatWithoutAFieldRemovesIt() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        try q.queue.heartbeat(worker: "w1", info: [.kind: "worker", .unavailable: "gold"], ttl: .seconds(60), on: q.redis)
        #expect(try q.queue.liveWorkers(on: q.redis)["w1"]?[.unavailable] == "gold")
        try q.queue.heartbeat(worker: "w1", info: [.kind: "worker"], ttl: .seconds(60), on: q.redis)
        let fields = try #require(try q.queue.liveWorkers(on: q.redis)["w1"])
        #expect(fields[.unavailable] == nil && fields[.kind] == "worker" && fields[.beatAt] != nil)
    }

    /// Redis restarted with its clock two hours behind: a dead worker's heartbeat (stamped by the
    /// clock before the step, its expiry an absolute time as far ahead) is not believed; the worker
    /// is reaped one grace period after it was first seen so, and its heartbeat goes.
    @Test func aHeartbeatStampedAheadOfRedisClockIsReapedAfterTheGrace() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        let control = q.queue.keys.control
        try q.submit(13)
        try q.queue.heartbeat(worker: "dead", info: [.kind: "worker"], ttl: .seconds(60), on: q.redis)
        let job = try #require(try q.fetch("dead", levels: ["gold"]))
        let ahead = Int64(try q.redisNow()) + 7_200_000
        try q.redis.send("HSET", control.heartbeat("dead"), WorkerField.beatAt.rawValue, ahead)
        try q.redis.send("PEXPIRE", control.heartbeat("dead"), 7_200_000)
        // A live worker whose heartbeat was stamped ahead renews it by the clock as it runs now.
        try q.queue.heartbeat(worker: "alive", info: [:], ttl: .seconds(60), on: q.redis)
        try q.redis.send("HSET", control.heartbeat("alive"), WorkerField.beatAt.rawValue, ahead)
        #expect(try q.queue.reap(grace: .milliseconds(200), on: q.redis) == 0, "first seen: suspect")
        #expect(try q.redis.send("EXISTS", control.suspect("dead")).int == 1)
        try q.queue.heartbeat(worker: "alive", info: [:], ttl: .seconds(60), on: q.redis)
        var reaped = 0
        let deadline = ContinuousClock.now + .seconds(10)
        while reaped == 0, ContinuousClock.now < deadline {
            usleep(50_000)
            reaped += try q.queue.reap(grace: .milliseconds(200), on: q.redis)
        }
        #expect(reaped == 1)
        #expect(try q.list(q.shard.processing("dead")).isEmpty)
        #expect(try q.job(13)?.status == .queued && q.job(13)?.fence == job.token)
        #expect(try q.redis.send("EXISTS", control.heartbeat("dead")).int == 0)
        #expect(try q.redis.send("SMEMBERS", control.workers) == .array([.bulk(Array("alive".utf8))]))
        #expect(try q.queue.liveWorkers(on: q.redis).keys.sorted() == ["alive"])
    }

    /// A suspect marked before Redis' clock stepped back is marked again: the grace is counted
    /// from then, not from a time hours ahead.
    @Test func aSuspectMarkedAheadOfRedisClockIsMarkedAgain() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        let control = q.queue.keys.control
        try q.redis.send("SADD", control.workers, "dead")
        try q.redis.send("SET", control.suspect("dead"), Int64(try q.redisNow()) + 7_200_000, "PX", 60_000)
        #expect(try q.queue.reap(grace: .milliseconds(100), on: q.redis) == 0)
        let since = try #require(try q.redis.send("GET", control.suspect("dead")).string.flatMap(Double.init))
        #expect(since <= (try q.redisNow()).rounded(.up))
        usleep(150_000)
        #expect(try q.queue.reap(grace: .milliseconds(100), on: q.redis) == 0, "it held nothing")
        #expect(try q.redis.send("SISMEMBER", control.workers, "dead").int == 0)
    }

    /// A retry scheduled further ahead than the backoff's cap was scheduled by a clock that was
    /// ahead of Redis' clock now (it stepped back): due now. Within the cap it waits.
    @Test func aRetryScheduledBeyondTheBackoffsCapIsDue() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        let horizons = ScheduleHorizons(retry: .seconds(300), deferral: .seconds(30))
        try q.submit(14)
        try q.submit(15)
        let waiting = try #require(try q.fetch(levels: ["gold"]))
        let stuck = try #require(try q.fetch(levels: ["gold"]))
        #expect(try q.fail(waiting, delay: .seconds(200)) == .retrying)
        #expect(try q.fail(stuck, delay: .seconds(7200)) == .retrying)
        #expect(try q.queue.promoteDue(on: q.redis) == 0, "without horizons each waits for its time")
        #expect(try q.queue.promoteDue(horizons: horizons, on: q.redis) == 1)
        #expect(try q.job(stuck.cid)?.status == .queued && q.job(waiting.cid)?.status == .retrying)
        // And a deferral beyond its horizon.
        let deferred = try #require(try q.fetch(levels: ["gold"]))
        #expect(try q.queue.deferJob(JobID(cid: deferred.cid, gen: deferred.gen), worker: "w1", token: deferred.deliveryToken, reason: "full",
                                     for: .seconds(7200), locked: true, on: q.redis))
        #expect(try q.queue.promoteDue(horizons: ScheduleHorizons(retry: .seconds(300)), on: q.redis) == 0, "no deferral horizon known")
        #expect(try q.queue.promoteDue(horizons: horizons, on: q.redis) == 1)
        #expect(try q.job(deferred.cid)?.status == .queued)
    }

    @Test func aBlockingTakeIsClaimedAndAReleasePutsAnUnclaimedOneBack() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        #expect(try q.queue.waitForWork(worker: "w1", shard: 0, level: "gold", timeout: .milliseconds(200), on: q.redis) == nil)
        try q.submit(11)
        let taken = try #require(try q.queue.waitForWork(worker: "w1", shard: 0, level: "gold", timeout: .seconds(1), on: q.redis))
        // Taken but not claimed: a release (the worker stopping now) puts it back.
        #expect(try q.queue.release(worker: "w1", on: q.redis) == 1)
        #expect(try q.list(q.shard.queue("gold")) == [taken.id])
        let again = try #require(try q.queue.waitForWork(worker: "w1", shard: 0, level: "gold", timeout: .seconds(1), on: q.redis))
        guard case .claimed(let fields) = try q.queue.claim(again, worker: "w1", on: q.redis) else {
            Issue.record("the job was not claimed")
            return
        }
        #expect(Job(hash: fields)?.id == taken.id && Job(hash: fields)?.status == .moving)
    }

    /// Ids and scores are read back from Redis, where anyone may have written anything: the
    /// extremes give bounded answers, never a trap.
    @Test func extremeIdsAndScoresInRedisGiveBoundedAnswers() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        // A queued id whose generation is the most negative (the age of the oldest: now − gen).
        try q.redis.send("RPUSH", q.shard.queue("gold"), "1:-9223372036854775808")
        let stats = try q.queue.stats(levels: ["gold"], on: q.redis)
        #expect(stats.levels[0].oldestAgeMilliseconds == Int64.max)
        let (jobs, _) = try q.queue.jobsByLevel(levels: ["gold"], known: [:], on: q.redis)
        #expect(jobs.oldest.values.contains(Int64.max))
        // Retry scores past Int64 (Redis keeps inf, -inf and 1e19 as given).
        for (score, due) in [("1e19", Int64.max), ("inf", Int64.max), ("-inf", Int64.min), ("1234.9", 1234)] {
            try q.redis.send("ZADD", q.shard.retry, score, "5:7")
            #expect(try q.queue.retryDue(JobID(cid: 5, gen: 7), on: q.redis) == due, "score \(score)")
        }
    }

    /// A counter no command can add to (at 2^63 − 1, or not a number: written by hand) starts again
    /// at the amount added, as a reset does. Its HINCRBY stopped the script halfway before, after
    /// the job's own writes: every ack and every commit failed as if Redis were out of reach.
    @Test func aCounterThatCannotBeAddedToStartsAgainAndTheScriptEnds() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        let stats = q.shard.stats
        try q.redis.send("HSET", stats, "moved", "9223372036854775807", "moved_bytes", "lots", "committed", "9223372036854775807",
                         "retried", "x", "dead", "9223372036854775807")
        for cid in 1...3 { try q.submit(Int64(cid)) }
        let first = try #require(try q.fetch())
        try q.moveAndCommit(first)
        #expect(try q.job(first.cid)?.status == .committed)
        #expect(try q.fail(try #require(try q.fetch())) == .retrying)
        #expect(try q.fail(try #require(try q.fetch()), permanent: true) == .dead)
        let counters = try q.redis.send("HGETALL", stats).array!.compactMap(\.string)
        let values = Dictionary(uniqueKeysWithValues: stride(from: 0, to: counters.count - 1, by: 2).map { (counters[$0], counters[$0 + 1]) })
        #expect(values["moved"] == "1" && values["moved_bytes"] == "1" && values["committed"] == "1", "\(values)")
        #expect(values["retried"] == "1" && values["dead"] == "1", "\(values)")
    }

    @Test func statsCountEveryListAndTheOldestWait() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        let levels = ["gold", "silver", "bronze"]
        try q.queue.heartbeat(worker: "w1", info: [.kind: "worker", .levels: "gold"], ttl: .seconds(60), on: q.redis)
        for cid in 1...3 { try q.submit(Int64(cid)) }
        try q.submit(4, 2000, to: "silver")
        _ = try q.fetch(levels: ["gold"])
        try q.queue.pause(level: "silver", on: q.redis)
        usleep(20_000)
        let stats = try q.queue.stats(levels: levels, on: q.redis)
        #expect(stats.levels.map(\.name) == levels && stats.levels.map(\.depth) == [2, 1, 0])
        #expect(stats.levels.map(\.paused) == [false, true, false])
        #expect((stats.levels[0].oldestAgeMilliseconds ?? 0) >= 20 && stats.levels[2].oldestAgeMilliseconds == nil)
        #expect(stats.processing == 1 && stats.dead == 0 && stats.inFlight == 4)
        #expect(stats.workers.map(\.id) == ["w1"] && stats.workers[0].alive && stats.workers[0].held == 1)
        #expect(stats.workers[0].info[.levels] == "gold")
        try q.queue.resume(level: "silver", on: q.redis)
        #expect(try q.queue.paused(on: q.redis).isEmpty)
    }
}
