import Foundation
import JobQueue
import RedisClient
import RelocatorCore
import Testing
import TestSupport

/// A job whose copy may already be at its target (the worker recorded the verified checksum before
/// publishing) is never dropped, purged or re-aimed as if nothing had moved: every such path leaves
/// a job that brings the disks to one copy at the level SQL will name.
@Suite struct PublishedCopyTests {
    /// A job of cid 20 (bronze → gold) whose copy was published and whose source removal failed.
    func publishedThenFailed(_ q: QueueFixture) throws -> Job {
        try q.submit(20)
        let job = try #require(try q.fetch())
        #expect(try q.record(job, [(.checksum, "xxh128:aa"), (.bytes, "5"), (.stage, MoveStage.publishing.rawValue)]))
        #expect(try q.fail(job, reason: "permission_denied", delay: .seconds(60)) == .retrying)
        return job
    }

    @Test func aCountBackToTheOriginReversesTheJobInsteadOfDroppingIt() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        let job = try publishedThenFailed(q)
        let back = try q.submit(20, 5, to: "bronze")
        #expect(back.outcome == .reversed)
        let reversed = try #require(back.job)
        #expect(reversed.dbLevel == "gold" && reversed.target == "bronze" && reversed.gen > job.gen && reversed.status == .queued)
        #expect(reversed.checksum == "xxh128:aa" && reversed.stage == nil && reversed.attempts == 0)
        #expect(try q.redis.send("ZCARD", q.shard.retry).int == 0)
        #expect(try q.fetch(levels: ["bronze"])?.id == reversed.id)
    }

    /// After a reversal the job's origin is where the copy went, while the database still names
    /// the level it came from: a count for the copy's level re-aims the job from the database's
    /// level (its delivery finds the file in place and the commit makes the database say so).
    @Test func aCountForTheLevelAReversedJobLeavesReAimsItFromTheDatabasesLevel() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        let job = try publishedThenFailed(q)
        let back = try #require(try q.submit(20, 5, to: "bronze").job)
        #expect(back.dbLevel == "gold" && back.target == "bronze")
        let again = try q.submit(20, 20000, from: "bronze", to: "gold")
        #expect(again.outcome == .retargeted)
        let aimed = try #require(again.job)
        #expect(aimed.dbLevel == "bronze" && aimed.target == "gold" && aimed.status == .queued && aimed.gen > back.gen && aimed.gen > job.gen)
        #expect(aimed.checksum == "xxh128:aa" && aimed.attempts == 0)
        #expect(try q.fetch(levels: ["gold"])?.id == aimed.id)
        #expect(try q.fetch(levels: ["bronze"]) == nil, "the reversed job's id is stale")
    }

    /// A caller that read the job's origin from the database: the file is where the count wants it.
    @Test func aCountForAReversedJobsOriginThatTheDatabaseNamesDropsIt() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        _ = try publishedThenFailed(q)
        #expect(try q.submit(20, 5, to: "bronze").outcome == .reversed)
        #expect(try q.submit(20, 20000, from: "gold", to: "gold").outcome == .dropped)
        #expect(try q.job(20) == nil)
    }

    @Test func aThirdLevelWaitsForTheMoveToFinish() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        let job = try publishedThenFailed(q)
        let third = try q.submit(20, 2000, to: "silver")
        #expect(third.outcome == .followUp && third.job?.target == "gold" && third.job?.nextTarget == "silver")
        #expect(third.job?.status == .retrying && third.job?.gen == job.gen)
    }

    @Test func aFailureAfterPublishWithACountBackToTheOriginReversesTheJob() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        try q.submit(21)
        let job = try #require(try q.fetch())
        #expect(try q.record(job, [(.checksum, "xxh128:bb"), (.stage, MoveStage.publishing.rawValue)]))
        #expect(try q.submit(21, 5, to: "bronze").outcome == .followUp)
        #expect(try q.fail(job, reason: "read_only") == .reversed)
        let reversed = try #require(try q.job(21))
        #expect(reversed.status == .retrying && reversed.dbLevel == "gold" && reversed.target == "bronze" && reversed.nextTarget == nil)
        #expect(try q.redis.send("ZSCORE", q.shard.retry, reversed.id).isNull == false)
    }

    @Test func withoutAPublishedCopyAFailureAimedBackIsDropped() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        try q.submit(22)
        let job = try #require(try q.fetch())
        #expect(try q.record(job, [(.bytesDone, "100"), (.bytesTotal, "1000")]))
        #expect(try q.submit(22, 5, to: "bronze").outcome == .followUp)
        #expect(try q.fail(job, reason: "no_space") == .dropped)
        #expect(try q.job(22) == nil)
    }

    @Test func purgingADeadJobWhoseCopyWasPublishedQueuesTheCleanUp() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        try q.submit(23)
        let job = try #require(try q.fetch())
        #expect(try q.record(job, [(.checksum, "xxh128:cc"), (.stage, MoveStage.publishing.rawValue)]))
        #expect(try q.fail(job, reason: "destination_conflict", permanent: true) == .dead)
        let purged = try q.queue.dead(.purge, cids: [23], on: q.redis)
        #expect(purged.map(\.outcome) == [.reversed])
        let cleanUp = try #require(try q.job(23))
        #expect(cleanUp.status == .queued && cleanUp.dbLevel == "gold" && cleanUp.target == "bronze")
        #expect(try q.list(q.shard.queue("bronze")) == [cleanUp.id])
        #expect(try q.queue.deadJobs(on: q.redis).isEmpty)
    }

    @Test func aNewCountForADeadPublishedJobRunsItAgain() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        try q.submit(24)
        let job = try #require(try q.fetch())
        #expect(try q.record(job, [(.checksum, "xxh128:dd"), (.stage, MoveStage.sourceRemoved.rawValue)]))
        #expect(try q.fail(job, reason: "io_error", permanent: true) == .dead)
        let again = try q.submit(24, 30000, to: "gold")
        // With a generation of its own: the move it finishes now orders after anything recorded meanwhile.
        #expect(again.outcome == .requeued && again.job?.status == .queued && (again.job?.gen ?? 0) > job.gen)
        #expect(try q.queue.deadJobs(on: q.redis).isEmpty)
        #expect(try q.fetch()?.id == again.job?.id)
    }

    /// A reaped delivery may be a paused process that still acts: until a later delivery has held
    /// the content's lock (its first record clears the fence), a count back to the origin does not
    /// reverse the job — it follows after the commit — and the reaped delivery can record nothing.
    @Test func aReapedDeliverysJobIsNotReversedUntilTheNextDeliveryHeldTheLock() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        try q.submit(25)
        let job = try #require(try q.fetch())
        #expect(try q.record(job, [(.checksum, "xxh128:ee"), (.stage, MoveStage.publishing.rawValue)]))
        // The slow worker was reaped: its job went back to the queue, copy published, fenced.
        #expect(try q.queue.giveBack(worker: "w1", fence: true, on: q.redis) == 1)
        #expect(try q.job(25)?.fence == job.token)
        #expect(try q.submit(25, 5, to: "bronze").outcome == .followUp)
        #expect(try q.job(25)?.target == "gold" && q.job(25)?.nextTarget == "bronze")
        // The slow worker can no longer record or acknowledge anything.
        #expect(try !q.record(job, [(.stage, MoveStage.publishing.rawValue)]))
        #expect(try !q.queue.ack(JobID(cid: 25, gen: job.gen), worker: "w1", token: job.deliveryToken, checksum: "x", bytes: 1, foundIn: nil,
                                 on: q.redis))
        // Another worker's delivery: a new token; the old one is refused even under the same worker id.
        let next = try #require(try q.fetch("w1"))
        #expect(next.token == job.token! + 1)
        #expect(try !q.record(job, [(.checksum, "xxh128:ee")]))
        #expect(try !q.queue.ack(JobID(cid: 25, gen: job.gen), worker: "w1", token: job.deliveryToken, checksum: "x", bytes: 1, foundIn: nil,
                                 on: q.redis))
        #expect(try q.job(25)?.status == .moving)
        // It holds the lock and records: the fence is gone, and a count may reverse the job again.
        #expect(try q.record(next, [(.checksum, "xxh128:ee"), (.stage, MoveStage.publishing.rawValue)]))
        #expect(try q.job(25)?.fence == nil)
        // Its failure now turns the job around for the count that waited: the copy at gold goes.
        #expect(try q.fail(next, reason: "io_error") == .reversed)
        #expect(try q.job(25)?.dbLevel == "gold" && q.job(25)?.target == "bronze")
    }

    /// A worker giving back what it holds after its moves ended leaves no fence: a count may
    /// reverse the job at once.
    @Test func aJobGivenBackByItsOwnWorkerAfterItsMovesEndedIsNotFenced() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        try q.submit(26)
        let job = try #require(try q.fetch())
        #expect(try q.record(job, [(.checksum, "xxh128:ee"), (.stage, MoveStage.publishing.rawValue)]))
        #expect(try q.queue.release(worker: "w1", fence: false, on: q.redis) == 1)
        #expect(try q.job(26)?.fence == nil)
        #expect(try q.submit(26, 5, to: "bronze").outcome == .reversed)
    }
}

/// Replies lost after Redis ran a command, stale writers, undecodable jobs, leases.
@Suite struct QueueEdgeTests {
    @Test func aClaimWhoseReplyWasLostSitsInTheProcessingListUntilGivenBack() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        try q.submit(30)
        // The take ran, the reply was lost: the worker holds nothing, Redis holds the id.
        let taken = try #require(try q.queue.take(worker: "w1", shard: 0, levels: ["gold"], on: q.redis))
        // And a claim whose reply was lost.
        try q.submit(31)
        let second = try #require(try q.queue.take(worker: "w1", shard: 0, levels: ["gold"], on: q.redis))
        _ = try q.queue.claim(second, worker: "w1", on: q.redis)
        let held = try q.queue.held(worker: "w1", on: q.redis)
        #expect(Set(held.map(\.id)) == [taken.id, second.id])
        #expect(try q.queue.giveBack(worker: "w1", ids: held, on: q.redis) == 2)
        #expect(try q.list(q.shard.processing("w1")).isEmpty)
        #expect(try q.job(31)?.status == .queued)
        #expect(Set(try q.list(q.shard.queue("gold"))) == [taken.id, second.id])
    }

    @Test func aStaleProgressWriteCannotRecreateAForgottenJob() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        try q.submit(32)
        let job = try #require(try q.fetch())
        try q.redis.send("DEL", q.shard.job(32))
        #expect(try !q.record(job, [(.part, "/x/.f.relocator-32-1.part")]))
        #expect(try !q.record(job, [(.checksum, "xxh128:00"), (.bytes, "1")]))
        #expect(try q.redis.send("EXISTS", q.shard.job(32)).int == 0)
    }

    @Test func aFilenameNamedNullIsAFilenameAndAnUndecodableJobIsDeadLettered() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        try q.submit(33, file: "null")
        #expect(try q.fetch()?.filename == "null")
        // A hash another program mangled: it is claimed, cannot be read, and goes to dead with why.
        try q.submit(34)
        try q.redis.send("HSET", q.shard.job(34), JobField.attempts.rawValue, "many")
        let taken = try #require(try q.queue.take(worker: "w1", shard: 0, levels: ["gold"], on: q.redis))
        guard case .claimed(let fields) = try q.queue.claim(taken, worker: "w1", on: q.redis),
              case .failure(let problem) = Job.decode(fields) else {
            Issue.record("the mangled job should be claimed and fail to decode")
            return
        }
        #expect(problem.field == .attempts)
        let id = try #require(JobID(taken.id))
        #expect(try q.queue.fail(id, worker: "w1", token: fields[JobField.token.rawValue] ?? "", reason: "undecodable_job", message: "\(problem)", permanent: true, delay: .zero,
                                 maxAttempts: 5, on: q.redis) == .dead)
        let dead = try q.queue.deadJobs(on: q.redis)
        #expect(dead.map(\.id) == [taken.id] && dead[0].fields[JobField.reason.rawValue] == "undecodable_job")
    }

    @Test func aLeasedContentIsNotClaimedUntilReleased() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        #expect(try q.queue.lease(cid: 35, token: "r1", ttl: .seconds(30), on: q.redis))
        #expect(try !q.queue.lease(cid: 35, token: "r2", ttl: .seconds(30), on: q.redis))
        try q.submit(35)
        let taken = try #require(try q.queue.take(worker: "w1", shard: 0, levels: ["gold"], on: q.redis))
        #expect(try q.queue.claim(taken, worker: "w1", on: q.redis) == .leased)
        // Put off, not back onto its queue (where every waiting slot would take it again at once):
        // due no later than the recheck, nor than the hold's end.
        #expect(try q.list(q.shard.processing("w1")).isEmpty && q.list(q.shard.queue("gold")).isEmpty)
        let held = try #require(try q.job(35))
        #expect(held.status == .deferred && held.deferReason == HeldContent.deferReason)
        let now = Int64(try q.redisNow())
        let due = try #require(held.dueAt)
        #expect(due > now - 1000 && due <= now + HeldContent.recheck.milliseconds, "due \(due), now \(now)")
        #expect(try q.fetch() == nil, "nothing to take while it waits")
        try q.queue.unlease(cid: 35, token: "r1", on: q.redis)
        // Once due it is promoted and taken (a hold that ends sooner: at its end).
        #expect(try q.queue.lease(cid: 35, token: "r3", ttl: .milliseconds(1), on: q.redis) == false, "a job waits: not leased")
        try RedisProcesses.waitUntil("the held job is promoted") {
            try q.queue.promoteDue(on: q.redis) > 0 || q.job(35)?.status == .queued
        }
        #expect(try q.fetch()?.cid == 35)
        // A content with a job in flight cannot be leased.
        #expect(try !q.queue.lease(cid: 35, token: "r1", ttl: .seconds(30), on: q.redis))
    }

    @Test func anOrphanedJobIsFoundAndPutBack() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        try q.submit(36)
        try q.redis.send("DEL", q.shard.queue("gold"))
        let found = try q.queue.orphans(cids: try q.queue.jobCIDs(on: q.redis), fix: false, on: q.redis)
        #expect(found.map(\.cid) == [36] && found[0].status == .queued && !found[0].restored)
        #expect(try q.queue.orphans(cids: [36], fix: true, on: q.redis).map(\.restored) == [true])
        #expect(try q.queue.orphans(cids: [36], fix: false, on: q.redis).isEmpty)
        #expect(try q.fetch()?.cid == 36)
    }

    @Test func aDeferredJobWaitsWithoutAnAttemptAndCoalescesLaterCounts() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        try q.submit(37)
        let job = try #require(try q.fetch())
        #expect(try q.queue.deferJob(JobID(cid: 37, gen: job.gen), worker: "w1", token: job.deliveryToken, reason: "gold above 90%",
                                     for: .seconds(60), locked: true,
                                     on: q.redis))
        let waiting = try #require(try q.job(37))
        #expect(waiting.status == .deferred && waiting.attempts == 0 && waiting.deferReason == "gold above 90%")
        #expect(try q.submit(37, 25000).outcome == .updated)
        #expect(try q.queue.promoteDue(on: q.redis) == 0)
        try q.redis.send("ZADD", q.shard.deferred, 0, job.id)
        #expect(try q.queue.promoteDue(on: q.redis) == 1)
        #expect(try q.fetch()?.count == 25000)
    }
}

/// With N shards a content's keys carry its shard's hash tag, and everything still flows.
@Suite struct ShardedQueueTests {
    @Test func jobsLandInTheShardOfTheirCidAndFlowThroughEveryShard() throws {
        let q = try QueueFixture(shards: 4)
        defer { q.cleanUp() }
        let keys = q.queue.keys
        #expect(keys.shard(3).job(7).hasPrefix(keys.prefix.dropLast().description + ":3}"))
        for cid in Int64(1)...8 { try q.submit(cid) }
        for shard in keys.shards {
            let ids = try q.list(shard.queue("gold"))
            #expect(ids.count == 2 && ids.allSatisfy { (JobID($0)!.cid % 4) == Int64(shard.index) })
        }
        var seen: Set<Int64> = []
        while let job = try q.fetch() {
            seen.insert(job.cid)
            try q.moveAndCommit(job)
        }
        #expect(seen == Set(1...8))
        let stats = try q.queue.stats(levels: ["gold"], on: q.redis)
        #expect(stats.totals[.committed] == 8 && stats.inFlight == 0)
    }
}
