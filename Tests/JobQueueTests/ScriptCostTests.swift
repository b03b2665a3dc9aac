@testable import JobQueue
import RedisClient
import RelocatorCore
import Testing
import TestSupport

/// What the scripts do in fewer commands keeps its meaning: batches taken and committed in a few
/// commands each, a claim's token one more than the last, scripts that need no clock not asking
/// Redis for it.
@Suite struct ScriptCostTests {
    /// Five verified moves acknowledged one after the other.
    func fiveDone(_ q: QueueFixture) throws -> [String] {
        var ids: [String] = []
        for cid in Int64(1)...5 {
            try q.submit(cid)
            let job = try #require(try q.fetch(levels: ["gold"]))
            #expect(try q.queue.ack(JobID(cid: cid, gen: job.gen), worker: "w1", token: job.deliveryToken, checksum: "xxh128:00", bytes: 10,
                                    foundIn: nil, on: q.redis))
            ids.append(job.id)
        }
        return ids
    }

    @Test func aBatchOfDoneJobsIsTakenOldestFirstWhatIsHeldFirstAndCountedOnceCommitted() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        let ids = try fiveDone(q)
        // The three oldest, as many RPOPLPUSH would have taken them: the committer's list holds the
        // newest taken at its head.
        #expect(try q.queue.takeDone(committer: "c1", shard: 0, max: 3, on: q.redis).map(\.id) == Array(ids[0..<3]))
        #expect(try q.list(q.shard.committing("c1")) == [ids[2], ids[1], ids[0]])
        #expect(try q.list(q.shard.done) == [ids[4], ids[3]])
        // Fresh: only new ones, while the held ones are being written.
        #expect(try q.queue.takeDone(committer: "c1", shard: 0, max: 1, fresh: true, on: q.redis).map(\.id) == [ids[3]])
        // Again (a try that did not finish): what it holds first, then the rest of done.
        let again = try q.queue.takeDone(committer: "c1", shard: 0, max: 10, on: q.redis)
        #expect(again.map(\.id) == [ids[3], ids[2], ids[1], ids[0], ids[4]])
        #expect(again.allSatisfy { Job(hash: $0.fields)?.status == .done })
        #expect(try q.list(q.shard.done).isEmpty)
        #expect(try q.list(q.shard.committing("c1")) == [ids[4], ids[3], ids[2], ids[1], ids[0]])
        // Nothing left in done: a take hands out what is held and no more.
        #expect(try q.queue.takeDone(committer: "c1", shard: 0, max: 10, fresh: true, on: q.redis).isEmpty)

        // The whole batch committed: counted once for all, in the totals and this minute's ring.
        let levels = ["gold", "silver", "bronze"]
        try q.queue.markCommitted(ids: again.map(\.id), shard: 0, committer: "c1", ttl: .seconds(60), levels: levels, on: q.redis)
        #expect(try q.list(q.shard.committing("c1")).isEmpty)
        for cid in Int64(1)...5 { #expect(try q.job(cid)?.status == .committed) }
        #expect(try q.queue.stats(levels: levels, on: q.redis).totals[.committed] == 5)
        let now = Int64(try q.redisNow())
        let throughput = try q.queue.throughput(now: now, window: 2, on: q.redis)
        #expect(throughput.committed.map(\.count).reduce(0, +) == 5)
        #expect(throughput.moved.map(\.count).reduce(0, +) == 5 && throughput.moved.map(\.bytes).reduce(0, +) == 50)
        // Committed again (a batch delivered twice): counted nowhere again.
        try q.queue.markCommitted(ids: again.map(\.id), shard: 0, committer: "c1", ttl: .seconds(60), levels: levels, on: q.redis)
        #expect(try q.queue.stats(levels: levels, on: q.redis).totals[.committed] == 5)
    }

    @Test func everyClaimGivesATokenOneMoreThanTheLastAndOnlyTheLastActs() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        try q.submit(9)
        let first = try #require(try q.fetch("w1", levels: ["gold"]))
        #expect(first.deliveryToken == "1")
        #expect(try q.queue.release(worker: "w1", on: q.redis) == 1)
        let second = try #require(try q.fetch("w2", levels: ["gold"]))
        #expect(second.deliveryToken == "2" && second.fence == 1)
        // The first delivery's calls are refused; the second's progress clears the fence.
        #expect(try !q.record(first, worker: "w1", [(.bytesDone, "1"), (.bytesTotal, "2")]))
        #expect(try q.record(second, worker: "w2", [(.bytesDone, "1"), (.bytesTotal, "2")]))
        let recorded = try #require(try q.job(9))
        #expect(recorded.fence == nil && recorded.bytesDone == 1 && recorded.bytesTotal == 2)
        #expect(try !q.queue.ack(JobID(cid: 9, gen: first.gen), worker: "w1", token: first.deliveryToken, checksum: "x", bytes: 1, foundIn: nil,
                                 on: q.redis))
        // Given back again: the next claim clears the last delivery's progress.
        #expect(try q.queue.release(worker: "w2", fence: false, on: q.redis) == 1)
        let third = try #require(try q.fetch("w2", levels: ["gold"]))
        #expect(third.deliveryToken == "3" && third.bytesDone == nil && third.bytesTotal == nil)
    }

    @Test func aTokenThatIsNotAWholeNumberIsAClaimErrorNotANewCount() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        try q.submit(11)
        try q.redis.send("HSET", q.shard.job(11), JobField.token.rawValue, "1.5")
        let taken = try #require(try q.queue.take(worker: "w1", shard: 0, levels: ["gold"], on: q.redis))
        #expect { try q.queue.claim(taken, worker: "w1", on: q.redis) } throws: {
            ($0 as? RedisError)?.message.contains("its token is not a whole number: 1.5") == true
        }
        #expect(try q.redis.send("HGET", q.shard.job(11), JobField.status.rawValue).string == JobStatus.queued.rawValue)
        #expect(try q.redis.send("HGET", q.shard.job(11), JobField.token.rawValue).string == "1.5")
    }

    @Test func onlyTheScriptsThatReadTheClockAskRedisForIt() throws {
        let time = "redis.call('TIME')"
        for script in [QueueScripts.take, QueueScripts.progress, QueueScripts.takeDone, QueueScripts.handback, QueueScripts.writable] {
            #expect(!script.source.contains(time), "\(script.name) asks for the time it never reads")
        }
        for script in [QueueScripts.claim, QueueScripts.ack, QueueScripts.enqueue, QueueScripts.committed, QueueScripts.heartbeat] {
            #expect(script.source.contains(time), "\(script.name) reads the clock without asking for it")
        }
        // Line for line the same helpers: an error's line stays right.
        #expect(QueueScripts.take.preludeLines == QueueScripts.claim.preludeLines)
        #expect(QueueScripts.readsClock("local due = now + 1"))
        #expect(QueueScripts.readsClock("  countThisMinute(KEYS[1], 1, 0)"))
        #expect(!QueueScripts.readsClock("-- now and then\nlocal known = 1\nlocal nowhere = 2"))
    }

    @Test func theTakeSkipsPausedLevelsAndTakesFromTheFirstQueueThatHasAnId() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        try q.submit(1, to: "gold")
        try q.submit(2, 5, to: "silver")
        try q.redis.send("SADD", q.shard.paused, "gold")
        let taken = try #require(try q.queue.take(worker: "w1", shard: 0, levels: ["gold", "silver", "bronze"], on: q.redis))
        #expect(taken.level == "silver" && taken.id.hasPrefix("2:"))
        #expect(try q.queue.take(worker: "w1", shard: 0, levels: ["gold", "bronze"], on: q.redis) == nil)
        try q.redis.send("SREM", q.shard.paused, "gold")
        #expect(try q.queue.take(worker: "w1", shard: 0, levels: ["bronze", "gold"], on: q.redis)?.level == "gold")
    }
}

/// A worker's finisher acknowledges the moves of one directory fsync together.
@Suite struct BatchedAckTests {
    /// The next delivery of gold for `worker` (the test fails, saying what came instead, without one).
    static func next(_ session: RedisJobQueue, _ worker: String = "w1") throws -> Delivery {
        let next = try session.next(NextRequest(worker: worker, levels: ["gold"], rotation: 0, wait: .zero))
        guard case .delivery(let delivery) = next else { throw ClusterError("no delivery for \(worker): \(next)") }
        return delivery
    }

    @Test func movesAcknowledgedTogetherEndAsEachAloneInOrder() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        let session = RedisJobQueue(queue: q.queue, redis: q.redis)
        for cid in Int64(21)...23 { try q.submit(cid) }
        func next(_ worker: String) throws -> Delivery { try Self.next(session, worker) }
        let first = try next("w1"), second = try next("w1")
        // The third is given back and claimed again: its first delivery is stale.
        let stale = try next("w2")
        #expect(try q.queue.release(worker: "w2", on: q.redis) == 1)
        let again = try next("w3")
        let checksum = try Checksum(parsing: "xxh128:" + String(repeating: "cd", count: 16))
        let moved = Outcome.moved(checksum, bytes: 7, method: .copied, foundIn: nil)
        let ended = try session.complete([(first, moved), (stale, moved), (second, moved)]).map { try $0.get() }
        #expect(ended == [.done, .stale, .done])
        #expect(try q.list(q.shard.done) == [second.id.description, first.id.description])
        #expect(try q.list(q.shard.processing("w1")).isEmpty)
        #expect(try q.job(stale.job.cid)?.status == .moving && q.job(stale.job.cid)?.deliveryToken == again.token)
        #expect(try q.job(first.job.cid)?.checksum == checksum.description)
        // Another kind of ending among them: each as complete would end it.
        let failed = Outcome.failed(.ioError, message: "io_error: test", permanent: false, delay: .zero, maxAttempts: 5)
        #expect(try session.complete([(again, moved), (again, failed)]).map { try $0.get() } == [.done, .stale])
        #expect(session.complete([]).isEmpty)
    }

    /// What a delivery leaves in its job (its stage, progress, a fence, an earlier error) ends with
    /// its ack, for each move of a batch as it has them: moved-at and done written once for all.
    @Test func aBatchedAckClearsWhatEachDeliveryLeftAndStampsEachMove() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        let session = RedisJobQueue(queue: q.queue, redis: q.redis)
        for cid in Int64(41)...43 { try q.submit(cid) }
        let deliveries = try (0..<3).map { _ in try Self.next(session) }
        let checksum = try Checksum(parsing: "xxh128:" + String(repeating: "ab", count: 16))
        #expect(try session.record(deliveries[0], .publishing(checksum, bytes: 7)))
        #expect(try session.record(deliveries[0], .copied(3, of: 7)))
        try q.redis.send("HSET", q.shard.job(deliveries[1].job.cid), JobField.lastError.rawValue, "io_error: once", JobField.reason.rawValue,
                         "io_error", JobField.fence.rawValue, "0")
        let moved = Outcome.moved(checksum, bytes: 7, method: .copied, foundIn: nil)
        #expect(try session.complete(deliveries.map { ($0, moved) }).map { try $0.get() } == [.done, .done, .done])
        let first = try #require(try q.job(deliveries[0].job.cid)), second = try #require(try q.job(deliveries[1].job.cid))
        #expect(first.stage == nil && first.bytesDone == nil && first.bytesTotal == nil && first.status == .done)
        #expect(second.lastError == nil && second.reason == nil && second.fence == nil && second.earlierError == "io_error: once")
        #expect(try q.job(deliveries[2].job.cid)?.status == .done)
        #expect(try q.list(q.shard.done) == deliveries.reversed().map(\.id.description))
        for delivery in deliveries { #expect(try q.queue.lastMoved(cid: delivery.job.cid, on: q.redis) != nil) }
    }

    /// One move of a batch the queue refuses (its job key holds no hash: another program wrote
    /// it) fails alone: the moves before and after it in the same script are acknowledged, it stays
    /// held, and the answer says which.
    @Test func aMoveTheQueueRefusesFailsAloneAndTheOthersOfItsBatchAreAcknowledged() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        let session = RedisJobQueue(queue: q.queue, redis: q.redis)
        for cid in Int64(31)...33 { try q.submit(cid) }
        let deliveries = try (0..<3).map { _ in try Self.next(session) }
        let broken = deliveries[1]
        try q.redis.send("DEL", q.shard.job(broken.job.cid))
        try q.redis.send("SET", q.shard.job(broken.job.cid), "not a hash")
        let checksum = try Checksum(parsing: "xxh128:" + String(repeating: "ef", count: 16))
        let moved = Outcome.moved(checksum, bytes: 7, method: .copied, foundIn: nil)
        let ended = session.complete(deliveries.map { ($0, moved) })
        #expect(ended.count == 3)
        #expect(try ended[0].get() == .done && ended[2].get() == .done)
        #expect(throws: RedisError.self) { try ended[1].get() }
        #expect(Set(try q.list(q.shard.done)) == [deliveries[0].id.description, deliveries[2].id.description])
        #expect(try q.list(q.shard.processing("w1")) == [broken.id.description], "the refused move stays held")
        let totals = try q.queue.stats(levels: ["gold", "silver", "bronze"], on: q.redis).totals
        #expect(totals[.moved] == 2 && totals[.movedBytes] == 14)
    }

    @Test func movesOfSeveralShardsAreAcknowledgedOneScriptPerShardAndCountedOnce() throws {
        let q = try QueueFixture(shards: 2)
        defer { q.cleanUp() }
        var moves: [(id: JobID, worker: String, token: String, checksum: String, bytes: Int64, foundIn: String?)] = []
        for cid in Int64(1)...4 {
            try q.submit(cid)
            let job = try #require(try q.fetch("w1", levels: ["gold"]))
            moves.append((JobID(cid: job.cid, gen: job.gen), "w1", job.deliveryToken, "xxh128:0\(job.cid)", job.cid * 10, cid == 3 ? "silver" : nil))
        }
        // One of them with an old token: refused, the others not; the id stays in the processing
        // list, where it is the live delivery's.
        moves[1].token = "0"
        #expect(try q.queue.acks(moves, on: q.redis).map { try $0.get() } == [true, false, true, true])
        for shard in 0..<2 {
            let keys = q.queue.keys.shard(shard)
            let live = q.queue.keys.shardIndex(of: 2) == shard ? [moves[1].id.description] : []
            #expect(try q.list(keys.processing("w1")) == live)
            let done = try q.list(keys.done)
            #expect(Set(done) == Set(moves.filter { q.queue.keys.shardIndex(of: $0.id.cid) == shard && $0.id.cid != 2 }.map(\.id.description)))
        }
        #expect(try q.job(3)?.dbLevel == "silver" && q.job(3)?.checksum == "xxh128:03" && q.job(2)?.status == .moving)
        let totals = try q.queue.stats(levels: ["gold", "silver", "bronze"], on: q.redis).totals
        #expect(totals[.moved] == 3 && totals[.movedBytes] == 80)
        let throughput = try q.queue.throughput(now: Int64(try q.redisNow()), window: 2, on: q.redis)
        #expect(throughput.moved.map(\.count).reduce(0, +) == 3 && throughput.moved.map(\.bytes).reduce(0, +) == 80)
    }
}

