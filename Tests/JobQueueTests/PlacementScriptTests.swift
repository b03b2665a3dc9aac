import Foundation
import JobQueue
import RedisClient
import RelocatorCore
import Testing
import TestSupport

/// The placement parts of the scripts against the real Redis: residency, residents' scores, hit
/// counters, permits and the bandwidth bucket.
@Suite struct PlacementScriptTests {
    let levels = ["gold", "silver", "bronze"]

    @Test func aContentThatMovedRecentlyGetsADeferredJobUntilItsResidencyEnds() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        let policy = JobQueue.CountPolicy(residencies: ["gold": .seconds(60)])
        try q.submit(1)
        try q.moveAndCommit(try #require(try q.fetch()))
        // Back down within a minute of landing on gold: the job waits.
        let back = try q.queue.submit(cid: 1, count: 5, filename: "f1", dbLevel: "gold", target: "bronze", policy: policy, on: q.redis)
        #expect(back.outcome == .created && back.job?.status == .deferred)
        let due = try #require(back.job?.dueAt)
        #expect(Double(due) > (try q.redisNow()) + 55_000)
        #expect(back.job?.deferReason?.contains("gold keeps contents at least 60 s") == true)
        #expect(try q.list(q.shard.queue("bronze")).isEmpty)
        // Later counts coalesce into the waiting job.
        #expect(try q.queue.submit(cid: 1, count: 2000, filename: "f1", dbLevel: "gold", target: "silver", policy: policy, on: q.redis).outcome
            == .retargeted)
        #expect(try q.job(1)?.status == .deferred && q.job(1)?.target == "silver")
        // Without a residency the same count queues at once.
        try q.submit(2)
        try q.moveAndCommit(try #require(try q.fetch()))
        #expect(try q.queue.submit(cid: 2, count: 5, filename: "f2", dbLevel: "gold", target: "bronze", on: q.redis).job?.status == .queued)
    }

    @Test func residentsKeepTheirCountsAndFollowTheirContentToItsNewLevel() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        for (cid, count) in [(Int64(1), Int64(10)), (2, 500), (3, 300)] {
            try q.submit(cid, count, to: "bronze")   // already on bronze: no job, just a count
        }
        #expect(try q.queue.coldest(level: "bronze", limit: 2, on: q.redis).map(\.cid) == [1, 3])
        try q.submit(2, 20000)
        try q.moveAndCommit(try #require(try q.fetch()))
        #expect(try q.queue.coldest(level: "bronze", limit: 10, on: q.redis).map(\.cid) == [1, 3])
        #expect(try q.queue.residentScore(cid: 2, level: "gold", on: q.redis) == 20000)
        #expect(try q.queue.residents(level: "bronze", below: 300, limit: 10, on: q.redis).map(\.cid) == [1])
        #expect(try q.queue.lastMoved(cid: 2, on: q.redis) != nil && q.queue.lastMoved(cid: 1, on: q.redis) == nil)
    }

    /// A count that read the level before the content last left it does not score the content
    /// there: a commit takes a score only from the level its job left, and a phantom resident would
    /// stay among the coldest, where the rebalancer looks for what to shed.
    @Test func aCountThatReadALevelTheContentHasLeftDoesNotScoreItThere() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        try q.submit(1, 20000)
        try q.moveAndCommit(try #require(try q.fetch()))
        #expect(try q.queue.submit(cid: 1, count: 700, filename: "f1", dbLevel: "gold", target: "silver", on: q.redis).outcome == .created)
        // Read before the move to gold (as bronze), for the job's own target.
        let stale = try q.queue.submit(cid: 1, count: 800, filename: "f1", dbLevel: "bronze", target: "silver", readAt: 1, on: q.redis)
        #expect(stale.outcome == .updated)
        #expect(try q.queue.residentScore(cid: 1, level: "bronze", on: q.redis) == nil)
        // Read after it, the count scores it where it is.
        let moved = try #require(try q.queue.lastMoved(cid: 1, on: q.redis))
        #expect(try q.queue.submit(cid: 1, count: 900, filename: "f1", dbLevel: "gold", target: "silver", readAt: moved + 1, on: q.redis).outcome
            == .updated)
        #expect(try q.queue.residentScore(cid: 1, level: "gold", on: q.redis) == 900)
    }

    /// A count that came while the content's move was committed, with a read from before that
    /// commit, scores the content nowhere at once (the level it read is one the content left);
    /// the commit of its job then scores the content where it arrives by that last count as of
    /// when it was sent, not by the score an earlier count left: a content counted hot is not
    /// taken for cold, nor cold for hot, for the moment its count came.
    @Test func aContentArrivesScoredByItsLastCountWhicheverLevelThatCountRead() throws {
        for policy in [CountPolicy.none, CountPolicy(halfLife: .seconds(3600))] {
            let q = try QueueFixture()
            defer { q.cleanUp() }
            try q.queue.submit(cid: 1, count: 20000, filename: "f1", dbLevel: "bronze", target: "gold", policy: policy, on: q.redis)
            try q.ack(try #require(try q.fetch()))
            try q.commitDone(policy: policy)
            let moved = try #require(try q.queue.lastMoved(cid: 1, on: q.redis))
            // Counted down to silver with a read of gold after the move, and claimed.
            #expect(try q.queue.submit(cid: 1, count: 5000, filename: "f1", dbLevel: "gold", target: "silver", readAt: moved + 1, policy: policy,
                                       on: q.redis).outcome == .created)
            let job = try #require(try q.fetch())
            // Counted hot again while it moves, with a read from before the move to gold (bronze).
            #expect(try q.queue.submit(cid: 1, count: 50000, filename: "f1", dbLevel: "bronze", target: "gold", readAt: moved - 1, policy: policy,
                                       on: q.redis).outcome == .followUp)
            // The count is scored as of when it was sent: an hour earlier here, a whole half-life.
            let countedAt = try #require(try q.redis.send("HGET", q.shard.job(1), JobField.countedAt.rawValue).string.flatMap(Int64.init))
            try q.redis.send("HSET", q.shard.job(1), JobField.countedAt.rawValue, countedAt - 3_600_000)
            try q.ack(job)
            try q.commitDone(policy: policy)
            let arrived = try #require(try q.queue.residentScore(cid: 1, level: "silver", on: q.redis))
            let expected = policy.halfLife == nil ? 50000 : log2(50000) + Double(countedAt - 3_600_000) / 3_600_000
            #expect(abs(arrived - expected) < 1e-6, "\(policy): \(arrived), not \(expected)")
            #expect(try q.queue.residentScore(cid: 1, level: "gold", on: q.redis) == nil)
            // Its follow-up back to gold takes that score there.
            try q.ack(try #require(try q.fetch()))
            try q.commitDone(policy: policy)
            #expect(try q.queue.residentScore(cid: 1, level: "gold", on: q.redis) == arrived)
        }
    }

    /// A job's last count is scored at its commit with the half-life of then: changed since the
    /// count (the residents and hits started afresh, docs/QUEUE.md) or removed, the content arrives
    /// scored in the units of its new neighbours.
    @Test func aCountIsScoredAtItsCommitWithTheHalfLifeOfThen() throws {
        let hour = CountPolicy(halfLife: .seconds(3600)), week = CountPolicy(halfLife: .seconds(7 * 86400))
        for (commitPolicy, expected) in [(week, { (at: Double) in log2(700) + at / (7 * 86_400_000) }), (CountPolicy.none, { (_: Double) in 700 })] {
            let q = try QueueFixture()
            defer { q.cleanUp() }
            try q.queue.submit(cid: 1, count: 700, filename: "f1", dbLevel: "bronze", target: "gold", policy: hour, on: q.redis)
            // (A job's first count was sent when it was enqueued.)
            #expect(try q.redis.send("HEXISTS", q.shard.job(1), JobField.countedAt.rawValue).int == 0)
            let countedAt = try #require(try q.redis.send("HGET", q.shard.job(1), JobField.enqueuedAt.rawValue).string.flatMap(Double.init))
            try q.ack(try #require(try q.fetch()))
            try q.commitDone(policy: commitPolicy)
            let arrived = try #require(try q.queue.residentScore(cid: 1, level: "gold", on: q.redis))
            #expect(abs(arrived - expected(countedAt)) < 1e-6, "\(commitPolicy): \(arrived)")
        }
    }

    /// A plan's move (the rebalancer's, its count read from a score) is no count: it neither
    /// scores the content nor replaces the job's last count, its job's commit carries the score
    /// the content had, and a commit after its read makes it stale rather than moving the content
    /// from where that commit put it.
    @Test func aPlansMoveIsNoCount() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        // cid 1 on gold, counted 50000; the plan sheds it to bronze with the count it read, 3.
        #expect(try q.submit(1, 50000, from: "gold", to: "gold").outcome == .inPlace)
        #expect(try q.queue.submit(cid: 1, count: 3, filename: "f1", dbLevel: "gold", target: "bronze", fromPlan: true, on: q.redis).outcome
            == .created)
        #expect(try q.queue.residentScore(cid: 1, level: "gold", on: q.redis) == 50000)
        try q.ack(try #require(try q.fetch()))
        try q.commitDone()
        #expect(try q.queue.residentScore(cid: 1, level: "bronze", on: q.redis) == 50000)

        // cid 5 on gold, counted 50000: a plan's move to silver publishes its copy and fails, and a
        // plan's move back reverses it; its commit returns the content to gold with the score it has there.
        #expect(try q.submit(5, 50000, from: "gold", to: "gold").outcome == .inPlace)
        #expect(try q.queue.submit(cid: 5, count: 3, filename: "f5", dbLevel: "gold", target: "silver", fromPlan: true, on: q.redis).outcome
            == .created)
        let shed = try #require(try q.fetch(levels: ["silver"]))
        #expect(try q.record(shed, [(.checksum, "xxh128:aa"), (.bytes, "5"), (.stage, MoveStage.publishing.rawValue)]))
        #expect(try q.fail(shed, reason: "permission_denied", delay: .seconds(60)) == .retrying)
        #expect(try q.queue.submit(cid: 5, count: 3, filename: "f5", dbLevel: "gold", target: "gold", fromPlan: true, on: q.redis).outcome
            == .reversed)
        try q.ack(try #require(try q.fetch(levels: ["gold"])))
        try q.commitDone()
        #expect(try q.queue.residentScore(cid: 5, level: "gold", on: q.redis) == 50000)
        #expect(try q.queue.residentScore(cid: 5, level: "silver", on: q.redis) == nil)

        // cid 2's job carries a real count; a plan's move re-aims it and leaves the count.
        try q.submit(2, 50000, from: "bronze", to: "gold")
        let counted = try q.redis.send("HMGET", q.shard.job(2), JobField.count.rawValue, JobField.countedAt.rawValue).array?.compactMap(\.string)
        #expect(try q.queue.submit(cid: 2, count: 3, filename: "f2", dbLevel: "bronze", target: "silver", fromPlan: true, on: q.redis).outcome
            == .retargeted)
        #expect(try q.redis.send("HMGET", q.shard.job(2), JobField.count.rawValue, JobField.countedAt.rawValue).array?.compactMap(\.string) == counted)

        // cid 3 committed to gold after the plan read it on bronze: the plan's move is stale.
        try q.submit(3, 50000, from: "bronze", to: "gold")
        let read = JobQueue.nowMilliseconds() - 1
        try q.ack(try #require(try q.fetch(levels: ["gold"])))
        try q.commitDone()
        #expect(try q.queue.submit(cid: 3, count: 3, filename: "f3", dbLevel: "bronze", target: "silver", readAt: read, fromPlan: true,
                                   on: q.redis).outcome == .staleLevel)
        // A plan that read gold (the SQL commit's level) before the commit's stamp in Redis stands.
        #expect(try q.queue.submit(cid: 3, count: 3, filename: "f3", dbLevel: "gold", target: "silver", readAt: read, fromPlan: true,
                                   on: q.redis).outcome == .created)
        // A count with the bronze read follows the commit, as ever (here into that job).
        #expect(try q.queue.submit(cid: 3, count: 3, filename: "f3", dbLevel: "bronze", target: "silver", readAt: read, on: q.redis).outcome
            == .updated)
    }

    /// One batch commits moves between several levels (its residents written once per level): a
    /// job with no count of its own (a plan's move) moves
    /// the content's score from the level it was on to its target, a content without a score there
    /// is scored by its count, those that stay are untouched, and moved-at names every content of
    /// the batch.
    @Test func aBatchCommittedTogetherMovesEachScoreWithItsContent() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        let policy = CountPolicy(halfLife: .seconds(3600))
        let started = try q.redisNow()
        // cids 1–3: plans' moves (their jobs have no count of their own); cid 4: a count, already on
        // bronze: no job.
        for (cid, count, from, to) in [(Int64(1), Int64(20000), "bronze", "gold"), (2, 20000, "silver", "gold"), (3, 700, "gold", "silver"),
                                       (4, 444, "bronze", "bronze")] {
            try q.queue.submit(cid: cid, count: count, filename: "f\(cid)", dbLevel: from, target: to, policy: policy, fromPlan: cid < 4, on: q.redis)
        }
        // Scores other than the counts; cid 3 has none on gold, and its count scores it on silver.
        try q.redis.send("ZADD", q.shard.residents("bronze"), 111, 1)
        try q.redis.send("ZADD", q.shard.residents("silver"), 222, 2)
        try q.redis.send("ZREM", q.shard.residents("gold"), 3)
        let ids = try q.fetchAndAck(3)
        #expect(Set(try q.commitDone(policy: policy)) == Set(ids))
        let finished = try q.redisNow()
        /// A count's score with the half-life, counted between the start and now.
        func scoredBetween(_ score: Double?, _ count: Double) -> Bool {
            guard let score else { return false }
            return score >= log2(count) + started / 3_600_000 - 1e-6 && score <= log2(count) + finished / 3_600_000 + 1e-6
        }
        #expect(try q.queue.residentScore(cid: 1, level: "gold", on: q.redis) == 111)
        #expect(try q.queue.residentScore(cid: 2, level: "gold", on: q.redis) == 222)
        #expect(scoredBetween(try q.queue.residentScore(cid: 3, level: "silver", on: q.redis), 700))
        #expect(try q.queue.residentScore(cid: 1, level: "bronze", on: q.redis) == nil)
        #expect(try q.queue.residentScore(cid: 2, level: "silver", on: q.redis) == nil)
        #expect(scoredBetween(try q.queue.residentScore(cid: 4, level: "bronze", on: q.redis), 444))
        #expect(try q.queue.coldest(level: "gold", limit: 10, on: q.redis).map(\.cid) == [1, 2])
        for cid in Int64(1)...3 {
            #expect(try q.job(cid)?.status == .committed)
            #expect(try q.queue.lastMoved(cid: cid, on: q.redis) != nil)
        }
        #expect(try q.queue.lastMoved(cid: 4, on: q.redis) == nil)
    }

    /// A done job whose hash lost its `db_level` (no script writes one so; an operator's HDEL may)
    /// commits with the rest of its batch: scored on its target by its count, moved-at stamped.
    @Test func aBatchCommitsAJobWhoseHashHasNoLevelLeft() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        try q.submit(1, 20000, to: "gold")
        try q.submit(2, 20000, from: "silver", to: "gold")
        let ids = try q.fetchAndAck(2)
        try q.redis.send("HDEL", q.shard.job(1), JobField.dbLevel.rawValue)
        #expect(Set(try q.commitDone()) == Set(ids))
        for cid in Int64(1)...2 {
            #expect(try q.redis.send("HGET", q.shard.job(cid), JobField.status.rawValue).string == JobStatus.committed.rawValue)
            #expect(try q.queue.lastMoved(cid: cid, on: q.redis) != nil)
            #expect(try q.queue.residentScore(cid: cid, level: "gold", on: q.redis) == 20000)
        }
    }

    @Test func aHitCounterHalvesEveryHalfLife() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        #expect(try q.queue.hit(cid: 5, hits: 100, halfLife: .milliseconds(300), on: q.redis) == 100)
        usleep(300_000)
        let later = try q.queue.hit(cid: 5, hits: 0, halfLife: .milliseconds(300), on: q.redis)
        #expect(later > 35 && later < 52, "\(later)")
    }

    @Test func permitsBoundTheMovesInFlightOfALevel() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        #expect(try q.queue.permit(level: "gold", holder: "w1/0", most: 2, ttl: .seconds(10), on: q.redis))
        #expect(try q.queue.permit(level: "gold", holder: "w2/0", most: 2, ttl: .seconds(10), on: q.redis))
        #expect(try !q.queue.permit(level: "gold", holder: "w3/0", most: 2, ttl: .seconds(10), on: q.redis))
        // A holder renews its own.
        #expect(try q.queue.permit(level: "gold", holder: "w1/0", most: 2, ttl: .seconds(10), on: q.redis))
        try q.queue.releasePermit(level: "gold", holder: "w2/0", on: q.redis)
        #expect(try q.queue.permit(level: "gold", holder: "w3/0", most: 2, ttl: .seconds(10), on: q.redis))
        // A permit whose holder died lapses.
        #expect(try q.queue.permit(level: "silver", holder: "dead/0", most: 1, ttl: .milliseconds(50), on: q.redis))
        usleep(80_000)
        #expect(try q.queue.permit(level: "silver", holder: "w1/0", most: 1, ttl: .seconds(10), on: q.redis))
    }

    @Test func roomReservedByOneSlotCountsAgainstEveryOtherUntilReleasedOrLapsed() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        // 100 bytes of room: two copies of 40 fit, a third waits, naming what the others hold.
        #expect(try q.queue.reserveRoom(level: "gold", holder: "w1/0", bytes: 40, room: 100, ttl: .seconds(10), on: q.redis) == (true, 0))
        #expect(try q.queue.reserveRoom(level: "gold", holder: "w2/0", bytes: 40, room: 100, ttl: .seconds(10), on: q.redis) == (true, 40))
        #expect(try q.queue.reserveRoom(level: "gold", holder: "w2/1", bytes: 40, room: 100, ttl: .seconds(10), on: q.redis) == (false, 80))
        // Another level is another room.
        #expect(try q.queue.reserveRoom(level: "silver", holder: "w2/1", bytes: 40, room: 100, ttl: .seconds(10), on: q.redis) == (true, 0))
        // A holder renewing its own reservation does not count itself.
        #expect(try q.queue.reserveRoom(level: "gold", holder: "w1/0", bytes: 40, room: .max, ttl: .seconds(10), on: q.redis) == (true, 40))
        try q.queue.releaseRoom(level: "gold", holder: "w1/0", on: q.redis)
        #expect(try q.queue.reserveRoom(level: "gold", holder: "w2/1", bytes: 40, room: 100, ttl: .seconds(10), on: q.redis) == (true, 40))
        // The reservation of a slot that died lapses.
        #expect(try q.queue.reserveRoom(level: "bronze", holder: "dead/0", bytes: 90, room: 100, ttl: .milliseconds(1500), on: q.redis) == (true, 0))
        #expect(try q.queue.reserveRoom(level: "bronze", holder: "w1/0", bytes: 90, room: 100, ttl: .seconds(10), on: q.redis) == (false, 90))
        usleep(1_600_000)
        #expect(try q.queue.reserveRoom(level: "bronze", holder: "w1/0", bytes: 90, room: 100, ttl: .seconds(10), on: q.redis) == (true, 0))
    }

    @Test func theBandwidthBucketHandsOutItsRateAndMakesTheRestWait() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        // A new bucket is empty: the first bytes wait for the rate.
        let first = try q.queue.takeBandwidth(level: "gold", rate: 1000, bytes: 100, on: q.redis)
        #expect(first > .milliseconds(90) && first <= .milliseconds(100), "\(first)")
        usleep(UInt32(first.milliseconds * 1000) + 5000)
        #expect(try q.queue.takeBandwidth(level: "gold", rate: 1000, bytes: 100, on: q.redis) == .zero)
        // After a quiet spell it holds a tenth of a second of bytes at most, then the rate.
        usleep(400_000)
        #expect(try q.queue.takeBandwidth(level: "gold", rate: 1000, bytes: 100, on: q.redis) == .zero)
        // (The bucket refills while the test runs: the wait is 100 ms less the time between the calls.)
        let wait = try q.queue.takeBandwidth(level: "gold", rate: 1000, bytes: 100, on: q.redis)
        #expect(wait > .zero && wait <= .milliseconds(100), "\(wait)")
    }
}

@Suite struct ShardCountTests {
    @Test func changingTheShardCountIsRefusedWhileJobsAreInTheOldLayoutAndTakenOnceEmpty() throws {
        let one = try QueueFixture()
        defer { one.cleanUp() }
        try one.queue.checkShardCount(on: one.redis)
        try one.submit(7)
        let four = JobQueue(keys: try KeySchema(prefix: one.queue.keys.prefix, shards: 4))
        #expect(throws: JobQueue.ShardCountChange.self) { try four.checkShardCount(on: one.redis) }
        do {
            try four.checkShardCount(on: one.redis)
        } catch {
            #expect("\(error)".contains("keep RELOCATOR_SHARDS=1") && "\(error)".contains("1 jobs"))
        }
        try one.moveAndCommit(try #require(try one.fetch()))
        try four.checkShardCount(on: one.redis)
        #expect(try one.redis.send("HGET", one.queue.keys.control.config, "shards").string == "4")
    }
}

@Suite struct StaleLevelTests {
    /// A submission based on a level read before the content changed level — with no job left to
    /// say where it went (its hash expired, or reconcile corrected the database) — is told to read
    /// the level again; a fresh read stands.
    @Test func aLevelReadBeforeTheContentChangedLevelIsToldToReadAgain() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        let before = JobQueue.nowMilliseconds() - 60_000
        try q.queue.levelChanged(cid: 9, on: q.redis)
        #expect(try q.submit(9, 5, from: "gold", to: "bronze", readAt: before).outcome == .staleLevel)
        #expect(try q.job(9) == nil)
        #expect(try q.submit(9, 5, from: "bronze", to: "bronze", readAt: JobQueue.freshRead).outcome == .inPlace)
        #expect(try q.submit(9, 50000, from: "bronze", to: "gold", readAt: JobQueue.freshRead).outcome == .created)
    }

    /// The caller's clock two hours ahead of Redis' (or behind): a level read before the content
    /// changed level is still told to read again, because the queue takes only the read's age
    /// from the caller (`sentAt`) and places it on its own clock; a read after the change stands.
    @Test(arguments: [Int64(7_200_000), -7_200_000])
    func theAgeOfARead_NotTheCallersClock_DecidesWhetherItIsStale(skew: Int64) throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        // Read 60 s ago on the caller's clock, then the content moved (now, on Redis' clock).
        let callerNow = JobQueue.nowMilliseconds() + skew
        _ = try q.queue.levelChanged(cid: 9, on: q.redis)
        let before = SubmitRequest(cid: 9, count: 5, filename: "f9", dbLevel: "gold", target: "bronze", readAt: callerNow - 60_000,
                                   sentAt: callerNow)
        let reply = try q.redis.pipeline(calls: [q.queue.submitCall(before)])[0]
        #expect(try q.queue.submitResult(from: reply, address: "test").outcome == .staleLevel)
        // Without the caller's clock, a read from a clock ahead looks newer than the move: what sentAt prevents.
        if skew > 0 { #expect(try q.submit(9, 5, from: "gold", to: "bronze", readAt: callerNow - 60_000).outcome != .staleLevel) }
        try q.redis.send("DEL", q.queue.keys.shard(of: 9).job(9))
        // A read made after the move (100 ms ago, the move 1 s ago on the queue's clock) stands.
        try q.redis.send("HSET", q.queue.keys.shard(of: 9).movedAt, "9", String(JobQueue.nowMilliseconds() - 1000))
        let after = SubmitRequest(cid: 9, count: 5, filename: "f9", dbLevel: "gold", target: "bronze", readAt: callerNow - 100, sentAt: callerNow)
        let second = try q.redis.pipeline(calls: [q.queue.submitCall(after)])[0]
        #expect(try q.queue.submitResult(from: second, address: "test").outcome == .created)
    }

    /// A call long on its way: the read's age on the caller's clock is short (10 ms), but the call
    /// reached Redis 5 s after it was stamped, after the content moved. With the lower bound of
    /// Redis' clock at the read (learnt from an earlier answer, which carries Redis' clock), the
    /// read is placed before the move and told to read again; by its age alone it stands.
    @Test func aReadBoundLearntFromRedisOutweighsTheTimeACallSpentOnItsWay() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        // An answer carries Redis' clock.
        let first = try q.redis.pipeline(calls: [q.queue.submitCall(SubmitRequest(cid: 8, count: 5, filename: "f8", dbLevel: "bronze",
                                                                                    target: "bronze", readAt: JobQueue.freshRead))])[0]
        let answered = try #require(try q.queue.submitResult(from: first, address: "test").queueNow)
        #expect(abs(Double(answered) - (try q.redisNow())) < 5_000)
        // Read 5 s before the call arrived; the content moved 3 s before it arrived.
        let readAt = answered - 5_000
        _ = try q.queue.levelChanged(cid: 9, on: q.redis)
        try q.redis.send("HSET", q.queue.keys.shard(of: 9).movedAt, "9", String(answered - 3_000))
        let callerNow: Int64 = 1_000_000
        func submit(_ cid: Int64, bound: Int64?) throws -> SubmitOutcome {
            let request = SubmitRequest(cid: cid, count: 5, filename: "f\(cid)", dbLevel: "gold", target: "bronze", readAt: callerNow - 10,
                                        sentAt: callerNow, readBound: bound)
            return try q.queue.submitResult(from: try q.redis.pipeline(calls: [q.queue.submitCall(request)])[0], address: "test").outcome
        }
        #expect(try submit(9, bound: readAt) == .staleLevel)
        // The bound only ever makes a read older: one after the move still stands by its age.
        _ = try q.queue.levelChanged(cid: 10, on: q.redis)
        try q.redis.send("HSET", q.queue.keys.shard(of: 10).movedAt, "10", String(answered - 60_000))
        #expect(try submit(10, bound: answered) == .created)
        // What the bound is for: by its age alone, the stale read of cid 9 would have stood.
        #expect(try submit(9, bound: nil) == .created)
    }

    /// A level read after a move landed but before its commit (the database still named the old
    /// level) is told to read again, also once the job that knew better is gone (a later count
    /// dropped it, its hash expired): the commit, not the landing, is when the database changed.
    @Test func aLevelReadBetweenAMoveAndItsCommitIsToldToReadAgainOnceTheJobIsGone() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        _ = try q.submit(9, 20000, from: "bronze", to: "gold", readAt: JobQueue.freshRead)
        let job = try #require(try q.fetch())
        #expect(try q.queue.ack(JobID(cid: 9, gen: job.gen), worker: "w1", token: job.deliveryToken, checksum: "xxh128:00", bytes: 1,
                                foundIn: nil, on: q.redis))
        // The file is on gold; a reader of the database still sees bronze.
        let landed = try q.redisNow()
        try RedisProcesses.waitUntil("Redis' clock passes the landing") { try q.redisNow() > landed + 2 }
        let readAt = Int64(try q.redisNow())
        try RedisProcesses.waitUntil("Redis' clock passes the read") { try q.redisNow() > Double(readAt) + 2 }
        let batch = try q.queue.takeDone(committer: "c1", shard: 0, max: 100, on: q.redis)
        try q.queue.markCommitted(ids: batch.map(\.id), shard: 0, committer: "c1", ttl: .seconds(60), levels: ["gold", "silver", "bronze"],
                                  on: q.redis)
        // A count sends it to silver, the next back to gold: the second drops the first's job.
        #expect(try q.submit(9, 2000, from: "gold", to: "silver", readAt: JobQueue.freshRead).outcome == .created)
        #expect(try q.submit(9, 20000, from: "gold", to: "gold", readAt: JobQueue.freshRead).outcome == .dropped)
        #expect(try q.job(9) == nil)
        #expect(try q.submit(9, 5, from: "bronze", to: "bronze", readAt: readAt).outcome == .staleLevel)
    }

    /// A change of level outside a move waits for a job in flight, and once made, a committed
    /// job no longer says where the file is: a count read before the change is told to read again.
    @Test func aLevelChangeAfterACommitOutranksTheCommittedJob() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        let before = JobQueue.nowMilliseconds() - 60_000
        _ = try q.submit(9, 20000, from: "bronze", to: "gold", readAt: JobQueue.freshRead)
        #expect(try q.queue.levelChangeGeneration(cid: 9, on: q.redis) == nil)
        try q.moveAndCommit(try #require(try q.fetch()))
        // Without a change since, the committed job says the file is on gold.
        #expect(try q.submit(9, 5, from: "bronze", to: "bronze", readAt: before).job?.dbLevel == "gold")
        try q.redis.send("DEL", q.queue.keys.shard(of: 9).job(9))
        _ = try q.submit(9, 20000, from: "gold", to: "gold", readAt: JobQueue.freshRead)
        _ = try q.submit(9, 20000, from: "bronze", to: "gold", readAt: JobQueue.freshRead)
        try q.moveAndCommit(try #require(try q.fetch()))
        let gen = try #require(try q.queue.levelChangeGeneration(cid: 9, on: q.redis))
        #expect(gen > (try q.job(9)?.gen ?? .max))
        try q.queue.levelChanged(cid: 9, on: q.redis)
        #expect(try q.submit(9, 5, from: "bronze", to: "bronze", readAt: before).outcome == .staleLevel)
    }
}

