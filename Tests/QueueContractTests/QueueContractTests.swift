import Foundation
import RelocatorCore
import RelocatorTesting
import Testing

/// One contract, two queues: every life-cycle scenario runs through the seam on the Redis queue
/// and on the memory queue; each must do what the scenario expects, and both must observe the same.
@Suite struct QueueContractTests {
    typealias Scenario = @Sendable (QueueUnderTest) throws -> Trace

    static let scenarios: [(String, Scenario)] = [
        ("claim", claim), ("ack and commit", ackAndCommit), ("retry with backoff", retry), ("dead letter and replay", deadLetter),
        ("purge of a published copy", purgePublished), ("reap", reap), ("give back", giveBack), ("deferral", deferral),
        ("residency", residency), ("pause", pause), ("coalescing", coalescing), ("follow-up after the commit", followUp),
        ("fence", fence), ("stale delivery", staleDelivery), ("a pull's secret", transferSecret), ("a published copy reversed", publishedReversed),
        ("a stale delivery leaves the live one held", staleLeavesLiveHeld), ("an undecodable job", undecodable),
        ("a count after a reversal", afterReversal), ("a level back in service", levelBack),
        ("levels seen", levelsSeen), ("a count as the job is aimed after a follow-up", followUpWithdrawn),
        ("a dead job revived after a level was recorded", revivedAfterALevelChange),
        ("a content forgotten", forgetContent), ("heartbeats in the statistics", heartbeatsInStats),
        ("a long wait another process announced", announcedHorizons),
        ("a follow-up waits for the residency of the level just moved to", followUpResidency),
        ("stale ids counted by level", staleIDsByLevel), ("a pull's two hosts", pullRoute),
        ("a pull's secret and route in one record", pullStarted),
        ("a reconcile run's questions to other hosts", inquiries), ("a rename while the content is held", renamedWhileHeld),
        ("a rename after a commit", renamedAfterCommit), ("a rename's actions in one round trip", renameActionsTogether),
        ("a follow-up is not re-aimed from a read before its commit", followUpNotReaimedFromAnOldRead),
        ("a reversed job is not dropped on a read before the last commit", reversedNotDroppedOnAnOldRead),
    ]

    @Test(arguments: scenarios.map(\.0))
    func bothQueuesKeepTheContract(scenario name: String) throws {
        let scenario = Self.scenarios.first { $0.0 == name }!.1
        var traces: [QueueUnderTest.Kind: Trace] = [:]
        for kind in QueueUnderTest.Kind.allCases {
            let queue = try QueueUnderTest(kind)
            defer { queue.close() }
            traces[kind] = try scenario(queue)
        }
        #expect(traces[.redis] == traces[.memory], "redis:\n\(traces[.redis]!)\nmemory:\n\(traces[.memory]!)")
    }

    /// The memory twin follows the scripts' rules for a clock that stepped back (Redis restarted
    /// with its clock behind; JobQueueTests check the scripts): a heartbeat stamped ahead is not
    /// believed, a retry scheduled beyond its horizon is due.
    @Test func theMemoryQueueFollowsTheScriptsWhenTheClockStepsBack() throws {
        let memory = MemoryQueue()
        try memory.submit(cid: 1, count: 20000, filename: "f1", dbLevel: "bronze", target: "gold")
        _ = try memory.maintain(MaintenanceRequest(beat: Heartbeat(id: "w1", kind: .worker), ttl: .seconds(60)))
        guard case .delivery(let delivery) = try memory.next(NextRequest(worker: "w1", levels: ["gold"], rotation: 0, wait: .zero)) else {
            throw Unexpected()
        }
        memory.advance(.seconds(-7200))
        let reaper = MaintenanceRequest(beat: Heartbeat(id: "w2", kind: .worker), ttl: .seconds(60), reapAfter: .milliseconds(20))
        #expect(try memory.maintain(reaper).reaped == 0, "first seen: suspect")
        var reaped = 0
        try waitUntil("w1 is reaped") {
            reaped += try memory.maintain(reaper).reaped
            return reaped > 0
        }
        #expect(try memory.heartbeats().map(\.id) == ["w2"])
        #expect(try memory.jobs(cids: [1])[1]?.fence == delivery.job.token)
        guard case .delivery(let again) = try memory.next(NextRequest(worker: "w2", levels: ["gold"], rotation: 0, wait: .zero)) else {
            throw Unexpected()
        }
        #expect(try memory.complete(again, .failed(.ioError, message: "io_error: test", permanent: false, delay: .seconds(60), maxAttempts: 5))
                == .retrying)
        memory.advance(.seconds(-7200))
        let promote = MaintenanceRequest(beat: Heartbeat(id: "w2", kind: .worker), ttl: .seconds(60), promoteDue: true)
        #expect(try memory.maintain(promote).promoted == 0, "without horizons it waits for its time")
        var bounded = promote
        bounded.horizons = ScheduleHorizons(retry: .seconds(300))
        #expect(try memory.maintain(bounded).promoted == 1)
        #expect(try memory.jobs(cids: [1])[1]?.status == .queued)
    }

    // MARK: - Scenarios

    static let claim: Scenario = { q in
        var trace = Trace()
        #expect(try q.submit(1).outcome == .created)
        let delivery = try #require(try q.next())
        #expect(delivery.job.status == .moving && delivery.token == "1" && delivery.worker == "w1" && delivery.level == "gold")
        trace.add(shape(delivery.job))
        #expect(try q.next() == nil, "one job, one delivery")
        trace.add(shape(try q.job(1)))
        return trace
    }

    static let ackAndCommit: Scenario = { q in
        var trace = Trace()
        try q.submit(2)
        let delivery = try #require(try q.next())
        #expect(try q.moved(delivery) == .done)
        trace.add(shape(try q.job(2)))
        #expect(try q.job(2)?.status == .done)
        let committed = try q.commitAll()
        #expect(committed.followUps == 0)
        #expect(try q.job(2)?.status == .committed)
        trace.add(shape(try q.job(2)))
        #expect(try q.commitAll().followUps == 0, "nothing twice")
        return trace
    }

    static let retry: Scenario = { q in
        var trace = Trace()
        try q.submit(3)
        let first = try #require(try q.next())
        #expect(try q.failed(first, .noSpace) == .retrying)
        let waiting = try #require(try q.job(3))
        #expect(waiting.status == .retrying && waiting.attempts == 1 && waiting.reason == "no_space")
        trace.add(shape(waiting))
        #expect(try q.next() == nil, "not before it is due")
        #expect(try q.promote() == 1)
        let second = try #require(try q.next())
        #expect(second.job.attempts == 1 && second.token == "2")
        trace.add(shape(second.job))
        return trace
    }

    /// A retry 10 minutes ahead, scheduled by a worker whose backoff reaches an hour: a worker whose
    /// own waits last a minute does not take it for one written before a clock step, because the
    /// first announced its hour. A retry 3 hours ahead — beyond every announced wait, as Redis'
    /// clock stepping back leaves one — is due at once.
    static let announcedHorizons: Scenario = { q in
        var trace = Trace()
        #expect(try q.promote(as: "w-long", retryCap: .seconds(3600)) == 0)
        try q.submit(18)
        #expect(try q.failed(try #require(try q.next()), after: .seconds(600)) == .retrying)
        let short = try q.promote(as: "w-short", retryCap: .seconds(60))
        #expect(short == 0, "a wait within another worker's announced backoff is not a clock step")
        #expect(try q.job(18)?.status == .retrying)
        try q.submit(19)
        #expect(try q.failed(try #require(try q.next()), after: .seconds(3 * 3600)) == .retrying)
        let stepped = try q.promote(as: "w-short", retryCap: .seconds(60))
        #expect(stepped == 1)
        #expect(try q.job(19)?.status == .queued && q.job(18)?.status == .retrying)
        trace.add("promoted \(short), then \(stepped)")
        return trace
    }

    static let deadLetter: Scenario = { q in
        var trace = Trace()
        try q.submit(4)
        let delivery = try #require(try q.next())
        #expect(try q.failed(delivery, .sourceMissing, permanent: true) == .dead)
        #expect(try q.session.deadLetters().map(\.job?.cid) == [4])
        trace.add(shape(try q.job(4)))
        guard case .dead(let outcomes) = try q.session.control(.dead(.replay, cids: [4])) else { throw Unexpected() }
        #expect(outcomes.map(\.outcome) == [.replayed])
        #expect(try q.session.deadLetters().isEmpty)
        let again = try #require(try q.next())
        #expect(again.job.attempts == 0)
        trace.add(shape(again.job))
        return trace
    }

    /// A dead job that comes back (a replay, or a count for its published copy) moves the file after
    /// whatever level reconcile or an operator recorded while it was dead: its generation is newer,
    /// so that its commit wins in the database.
    static let revivedAfterALevelChange: Scenario = { q in
        var trace = Trace()
        func recordedLevel(_ cid: Int64) throws -> Int64 {
            guard case .count(let gen) = try q.session.control(.levelGeneration(cid: cid)) else { throw Unexpected() }
            return Int64(gen)
        }
        // Dead before it published: an operator replays it.
        try q.submit(40)
        let first = try #require(try q.next())
        #expect(try q.failed(first, .unsafePath, permanent: true) == .dead)
        let recorded = try recordedLevel(40)
        #expect(recorded > first.job.gen)
        guard case .dead(let outcomes) = try q.session.control(.dead(.replay, cids: [40])) else { throw Unexpected() }
        #expect(outcomes.map(\.outcome) == [.replayed])
        let replayed = try #require(try q.next())
        #expect(replayed.job.gen > recorded, "replayed with generation \(replayed.job.gen), the level recorded at \(recorded)")
        trace.add(shape(replayed.job))
        // Dead after it published: a count for its target runs it again.
        try q.submit(41)
        let second = try #require(try q.next())
        #expect(try q.session.record(second, .publishing(QueueUnderTest.checksum, bytes: 10)))
        #expect(try q.failed(second, .destinationConflict, permanent: true) == .dead)
        let recordedToo = try recordedLevel(41)
        #expect(try q.submit(41).outcome == .requeued)
        let requeued = try #require(try q.next())
        #expect(requeued.job.gen > recordedToo, "requeued with generation \(requeued.job.gen), the level recorded at \(recordedToo)")
        trace.add(shape(requeued.job))
        #expect(try q.moved(requeued) == .done)
        #expect(try q.commitAll().followUps == 0)
        trace.add(shape(try q.job(41)))
        return trace
    }

    static let purgePublished: Scenario = { q in
        var trace = Trace()
        try q.submit(5)
        let delivery = try #require(try q.next())
        #expect(try q.session.record(delivery, .publishing(QueueUnderTest.checksum, bytes: 10)))
        #expect(try q.failed(delivery, .destinationConflict, permanent: true) == .dead)
        guard case .dead(let outcomes) = try q.session.control(.dead(.purge, cids: [5])) else { throw Unexpected() }
        #expect(outcomes.map(\.outcome) == [.reversed])
        let reversed = try #require(try q.job(5))
        #expect(reversed.status == .queued && reversed.dbLevel == "gold" && reversed.target == "bronze" && reversed.gen > delivery.job.gen)
        trace.add(shape(reversed))
        return trace
    }

    static let reap: Scenario = { q in
        var trace = Trace()
        try q.submit(6)
        _ = try q.session.maintain(MaintenanceRequest(beat: Heartbeat(id: "w1", kind: .worker), ttl: .milliseconds(1)))
        let delivery = try #require(try q.next("w1"))
        try waitUntil("w1's heartbeat expires") { try !q.session.heartbeats().contains { $0.id == "w1" } }
        // A worker first seen missing is a suspect; it is reaped once it stayed missing for the grace.
        let reaper = MaintenanceRequest(beat: Heartbeat(id: "w2", kind: .worker), ttl: .seconds(60), reapAfter: .milliseconds(20))
        #expect(try q.session.maintain(reaper).reaped == 0, "first seen missing: suspect")
        var reaped = 0
        try waitUntil("w1 is reaped") {
            reaped += try q.session.maintain(reaper).reaped
            return reaped > 0
        }
        #expect(reaped == 1)
        let given = try #require(try q.job(6))
        #expect(given.status == .queued && given.fence == delivery.job.token && given.attempts == 0)
        trace.add(shape(given))
        return trace
    }

    static let giveBack: Scenario = { q in
        var trace = Trace()
        try q.submit(7)
        _ = try #require(try q.next())
        #expect(try q.session.release(worker: "w1", fence: false) == 1)
        let given = try #require(try q.job(7))
        #expect(given.status == .queued && given.fence == nil)
        trace.add(shape(given))
        #expect(try q.next() != nil, "back on its queue")
        return trace
    }

    static let deferral: Scenario = { q in
        var trace = Trace()
        try q.submit(8)
        let delivery = try #require(try q.next())
        #expect(try q.session.complete(delivery, .deferred(reason: "gold above 90 %", delay: .zero, lockHeld: false)) == .deferred)
        let waiting = try #require(try q.job(8))
        #expect(waiting.status == .deferred && waiting.attempts == 0 && waiting.deferReason == "gold above 90 %")
        trace.add(shape(waiting))
        #expect(try q.promote() == 1)
        #expect(try q.next() != nil)
        return trace
    }

    static let residency: Scenario = { q in
        var trace = Trace()
        let policy = CountPolicy(residencies: ["gold": .seconds(3600)])
        try q.submit(9, policy: policy)
        let delivery = try #require(try q.next())
        #expect(try q.moved(delivery) == .done)
        _ = try q.commitAll(policy: policy)
        // Just moved to gold, which keeps contents an hour: a count sending it back waits.
        #expect(try q.submit(9, 5, from: "gold", to: "bronze", policy: policy).outcome == .created)
        let waiting = try #require(try q.job(9))
        #expect(waiting.status == .deferred && waiting.deferReason?.contains("keeps contents") == true)
        trace.add(shape(waiting))
        return trace
    }

    static let followUpResidency: Scenario = { q in
        var trace = Trace()
        let policy = CountPolicy(residencies: ["gold": .seconds(3600)])
        try q.submit(19, policy: policy)
        let delivery = try #require(try q.next())
        // A count sent while it moves asks for a follow-up back down.
        #expect(try q.submit(19, 2000, to: "silver", policy: policy).outcome == .followUp)
        #expect(try q.moved(delivery) == .done)
        #expect(try q.commitAll(policy: policy).followUps == 1)
        // Its commit made it a resident of gold: the follow-up waits out gold's hour, not queued.
        let waiting = try #require(try q.job(19))
        #expect(waiting.status == .deferred && waiting.target == "silver" && waiting.dbLevel == "gold")
        #expect(waiting.deferReason == "just moved to gold, which keeps contents at least 3600 s")
        let due = try #require(waiting.dueAt)
        #expect(due > waiting.updatedAt && due <= waiting.updatedAt + 3_600_000)
        #expect(try q.next() == nil, "nothing is queued while the window lasts")
        trace.add(shape(waiting))
        return trace
    }

    static let staleIDsByLevel: Scenario = { q in
        var trace = Trace()
        try q.submit(21)
        let delivery = try #require(try q.next())
        #expect(try q.failed(delivery, .sourceMissing, permanent: true) == .dead)
        let levels = ["gold", "silver", "bronze"]
        let (before, cache) = try q.session.jobsByLevel(levels: levels, known: [:])
        #expect(before.counts[.init(.dead, "gold", 0)] == 1 && cache.count == 1)
        // The hash becomes a newer generation's, for silver (as after a crash between two steps):
        // the dead list's id is stale. It is counted where the hash says now, and not cached.
        let dead = try #require(try q.job(21))
        try q.mangle(21, .gen, String(dead.gen + 1))
        try q.mangle(21, .target, "silver")
        let (after, recached) = try q.session.jobsByLevel(levels: levels, known: [:])
        trace.add("fresh: \(after.counts.filter { $0.value > 0 }.map { "\($0.key.state) \($0.key.level) \($0.value)" }.sorted()), cached \(recached.count)")
        // With the earlier cache, the old id keeps the target it had.
        let (cached, kept) = try q.session.jobsByLevel(levels: levels, known: cache)
        trace.add("cached: \(cached.counts.filter { $0.value > 0 }.map { "\($0.key.state) \($0.key.level) \($0.value)" }.sorted()), kept \(kept.count)")
        #expect(after.counts[.init(.dead, "silver", 0)] == 1 && recached.isEmpty)
        #expect(cached.counts[.init(.dead, "gold", 0)] == 1 && kept.count == 1)
        return trace
    }

    static let pause: Scenario = { q in
        var trace = Trace()
        try q.submit(10)
        _ = try q.session.control(.pause(level: "gold"))
        #expect(try q.next() == nil, "a paused level gives nothing")
        #expect(try q.session.maintain(MaintenanceRequest(beat: Heartbeat(id: "w1", kind: .worker), ttl: .seconds(60))).paused == ["gold"])
        _ = try q.session.control(.resume(level: "gold"))
        let delivery = try #require(try q.next())
        trace.add(shape(delivery.job))
        return trace
    }

    static let coalescing: Scenario = { q in
        var trace = Trace()
        try q.submit(11)
        for count in [25000, 30000] as [Int64] { #expect(try q.submit(11, count).outcome == .updated) }
        #expect(try q.submit(11, 2000, to: "silver").outcome == .retargeted)
        #expect(try q.submit(11, 5, to: "bronze").outcome == .dropped)
        #expect(try q.job(11) == nil)
        #expect(try q.next() == nil, "the ids left in the queues are stale")
        trace.add(shape(try q.job(11)))
        return trace
    }

    static let followUp: Scenario = { q in
        var trace = Trace()
        try q.submit(12)
        let delivery = try #require(try q.next())
        #expect(try q.submit(12, 2000, to: "silver").outcome == .followUp)
        #expect(try q.moved(delivery) == .done)
        #expect(try q.commitAll().followUps == 1)
        let next = try #require(try q.job(12))
        #expect(next.status == .queued && next.dbLevel == "gold" && next.target == "silver" && next.gen > delivery.job.gen)
        trace.add(shape(next))
        return trace
    }

    static let fence: Scenario = { q in
        var trace = Trace()
        try q.submit(13)
        let first = try #require(try q.next())
        #expect(try q.session.record(first, .publishing(QueueUnderTest.checksum, bytes: 10)))
        #expect(try q.session.release(worker: "w1", fence: true) == 1)
        #expect(try q.submit(13, 5).outcome == .updated)
        #expect(try q.submit(13, 5, to: "bronze").outcome == .followUp, "a reaped delivery may still act: no reversal")
        trace.add(shape(try q.job(13)))
        let second = try #require(try q.next("w2"))
        #expect(try q.session.record(second, .publishing(QueueUnderTest.checksum, bytes: 10)))
        #expect(try q.job(13)?.fence == nil, "the next delivery held the lock")
        trace.add(shape(try q.job(13)))
        return trace
    }

    static let staleDelivery: Scenario = { q in
        var trace = Trace()
        try q.submit(14)
        let first = try #require(try q.next())
        #expect(try q.session.release(worker: "w1", fence: true) == 1)
        let second = try #require(try q.next())
        #expect(try !q.session.record(first, .copied(1, of: 2)))
        #expect(try q.moved(first) == .stale)
        #expect(try q.failed(first) == .stale)
        #expect(try q.session.complete(first, .deferred(reason: "x", delay: .zero, lockHeld: true)) == .stale)
        #expect(try q.moved(second) == .done)
        trace.add(shape(try q.job(14)))
        return trace
    }

    /// Only the live delivery records the digest of its secret, bound to its token; a later one's
    /// replaces it, and an earlier one can no longer set it.
    static let transferSecret: Scenario = { q in
        var trace = Trace()
        try q.submit(15)
        let first = try #require(try q.next())
        #expect(try q.session.record(first, .transferSecret(digest: "d1")))
        #expect(try q.job(15)?.transferKey == "\(first.token):d1")
        #expect(try q.session.release(worker: "w1", fence: true) == 1)
        let second = try #require(try q.next())
        #expect(try !q.session.record(first, .transferSecret(digest: "d9")))
        #expect(try q.job(15)?.transferKey == "\(first.token):d1", "a stale delivery writes nothing")
        #expect(try q.session.record(second, .transferSecret(digest: "d2")))
        let job = try #require(try q.job(15))
        #expect(job.transferKey == "\(second.token):d2" && second.token != first.token)
        trace.add(shape(job) + " key=\(job.transferKey == "\(second.token):d2")")
        return trace
    }

    /// A pull records its two hosts and its progress with its token: a stale delivery writes
    /// neither, and the next claim clears the hosts of the delivery before it (it may move the file
    /// on one host).
    static let pullRoute: Scenario = { q in
        var trace = Trace()
        try q.submit(16)
        let first = try #require(try q.next())
        #expect(try q.job(16)?.pulledFrom == nil)
        let route = PullRoute(sourceWorker: "archive", sourceAddress: "10.0.0.2:7070", targetHost: "edge-1")
        #expect(try q.session.record(first, .pulling(route)))
        #expect(try q.session.record(first, .verified(8 << 20, of: 20 << 20)))
        let pulling = try #require(try q.job(16))
        #expect(pulling.pulledFrom == route && pulling.bytesDone == 8 << 20 && pulling.bytesTotal == 20 << 20 && pulling.verified == 8 << 20)
        trace.add(shape(pulling) + " route=\(pulling.pulledFrom?.sentence ?? "none")")
        #expect(try q.session.release(worker: "w1", fence: true) == 1)
        let second = try #require(try q.next())
        let claimed = try #require(try q.job(16))
        #expect(claimed.pulledFrom == nil, "the next claim clears the hosts of the delivery before it")
        #expect(claimed.verified == 8 << 20, "the verified prefix stays for the next delivery")
        let stale = PullRoute(sourceWorker: "gone", sourceAddress: "10.0.0.9:1", targetHost: "old")
        #expect(try !q.session.record(first, .pulling(stale)))
        #expect(try q.job(16)?.pulledFrom == nil, "a stale delivery writes nothing")
        let other = PullRoute(sourceWorker: "archive-2", sourceAddress: "[fd00::2]:7070", targetHost: "edge-1")
        #expect(try q.session.record(second, .pulling(other)))
        let job = try #require(try q.job(16))
        #expect(job.pulledFrom == other)
        trace.add(shape(job) + " route=\(job.pulledFrom?.sentence ?? "none")")
        return trace
    }

    /// A fresh pull records its secret and the route it asks first in one call, with its token: a
    /// stale delivery sets neither, and the next claim clears the route (the key names the token of
    /// the delivery that set it).
    static let pullStarted: Scenario = { q in
        var trace = Trace()
        try q.submit(25)
        let first = try #require(try q.next())
        let route = PullRoute(sourceWorker: "archive", sourceAddress: "10.0.0.2:7070", targetHost: "edge-1")
        #expect(try q.session.record(first, .pullStarted(secretDigest: "d1", route: route)))
        let started = try #require(try q.job(25))
        #expect(started.transferKey == "\(first.token):d1" && started.pulledFrom == route)
        trace.add(shape(started) + " route=\(started.pulledFrom?.sentence ?? "none") key=\(started.transferKey == "\(first.token):d1")")
        #expect(try q.session.release(worker: "w1", fence: true) == 1)
        let second = try #require(try q.next())
        let stale = PullRoute(sourceWorker: "gone", sourceAddress: "10.0.0.9:1", targetHost: "old")
        #expect(try !q.session.record(first, .pullStarted(secretDigest: "d9", route: stale)))
        let claimed = try #require(try q.job(25))
        #expect(claimed.pulledFrom == nil && claimed.transferKey == "\(first.token):d1", "a stale delivery writes nothing")
        #expect(try q.session.record(second, .pullStarted(secretDigest: "d2", route: route)))
        let job = try #require(try q.job(25))
        #expect(job.transferKey == "\(second.token):d2" && job.pulledFrom == route)
        trace.add(shape(job) + " route=\(job.pulledFrom?.sentence ?? "none") key=\(job.transferKey == "\(second.token):d2")")
        return trace
    }

    /// A copy recorded published (after its link) is one that may be at the target, as one
    /// recorded publishing: a count for its origin turns the job around rather than dropping it.
    static let publishedReversed: Scenario = { q in
        var trace = Trace()
        try q.submit(17)
        let delivery = try #require(try q.next())
        #expect(try q.session.record(delivery, .publishing(QueueUnderTest.checksum, bytes: 10)))
        #expect(try q.session.record(delivery, .published))
        #expect(try q.job(17)?.stage == .published)
        #expect(try q.failed(delivery) == .retrying)
        #expect(try q.submit(17, 5, to: "bronze").outcome == .reversed)
        trace.add(shape(try q.job(17)))
        return trace
    }

    /// A delivery given back and taken again by the same worker: the old delivery's ends are
    /// refused, and none of them takes the id out of the worker's processing list, where it is the
    /// live delivery's (else a crash of the worker would leave the live move to no reaper).
    static let staleLeavesLiveHeld: Scenario = { q in
        var trace = Trace()
        func held() throws -> [String] {
            try q.session.maintain(MaintenanceRequest(beat: Heartbeat(id: "w1", kind: .worker), ttl: .seconds(60), listHeld: true))
                .held.map(\.id)
        }
        try q.submit(24)
        let first = try #require(try q.next())
        #expect(try q.session.release(worker: "w1", fence: false) == 1)
        let second = try #require(try q.next())
        #expect(second.id == first.id && second.token != first.token)
        #expect(try q.moved(first) == .stale)
        #expect(try held() == [second.id.description], "a stale ack leaves the live delivery held")
        #expect(try q.failed(first) == .stale)
        #expect(try held() == [second.id.description], "a stale failure leaves the live delivery held")
        #expect(try q.session.complete(first, .deferred(reason: "x", delay: .zero, lockHeld: true)) == .stale)
        #expect(try held() == [second.id.description], "a stale deferral leaves the live delivery held")
        trace.add("held \(try held().count)")
        #expect(try q.moved(second) == .done)
        #expect(try held().isEmpty)
        trace.add(shape(try q.job(24)))
        return trace
    }

    static let afterReversal: Scenario = { q in
        var trace = Trace()
        try q.submit(16)
        let delivery = try #require(try q.next())
        #expect(try q.session.record(delivery, .publishing(QueueUnderTest.checksum, bytes: 10)))
        #expect(try q.failed(delivery) == .retrying)
        #expect(try q.submit(16, 5, to: "bronze").outcome == .reversed)
        trace.add(shape(try q.job(16)))
        // The database still says bronze: the count for gold re-aims the job from there.
        #expect(try q.submit(16, 20000, from: "bronze", to: "gold").outcome == .retargeted)
        let aimed = try #require(try q.job(16))
        #expect(aimed.dbLevel == "bronze" && aimed.target == "gold" && aimed.status == .queued)
        trace.add(shape(aimed))
        let next = try #require(try q.next(levels: ["gold"]))
        #expect(next.job.gen == aimed.gen)
        #expect(try q.next(levels: ["bronze"]) == nil, "the reversed job's id is stale")
        return trace
    }

    static let levelBack: Scenario = { q in
        var trace = Trace()
        var beat = Heartbeat(id: "w1", kind: .worker, levels: ["gold", "silver"], unavailable: ["gold"])
        _ = try q.session.maintain(MaintenanceRequest(beat: beat, ttl: .seconds(60)))
        #expect(try q.session.heartbeats().map(\.unavailable) == [["gold"]])
        trace.add("\(try q.session.heartbeats().map(\.unavailable))")
        beat.unavailable = []
        _ = try q.session.maintain(MaintenanceRequest(beat: beat, ttl: .seconds(60)))
        #expect(try q.session.heartbeats().map(\.unavailable) == [[]], "the level is back: no process names it")
        trace.add("\(try q.session.heartbeats().map(\.unavailable))")
        return trace
    }

    static let followUpWithdrawn: Scenario = { q in
        var trace = Trace()
        try q.submit(17)
        let first = try #require(try q.next())
        #expect(try q.session.release(worker: "w1", fence: true) == 1)
        let asked = try q.session.submit(SubmitRequest(cid: 17, count: 5, filename: "f17", dbLevel: "bronze", target: "bronze",
                                                       readAt: SubmitRequest.freshRead, queuedBy: QueuedBy(who: "a count of 5", rule: "bronze")))
        #expect(asked.outcome == .followUp, "fenced: the count back follows after the commit")
        #expect(asked.job?.nextQueuedBy?.who == "a count of 5")
        // The next delivery holds the lock (the fence goes) and waits; a count as the job is aimed
        // withdraws the follow-up the earlier count asked for.
        let second = try #require(try q.next("w2"))
        #expect(second.job.gen == first.job.gen)
        #expect(try q.session.complete(second, .deferred(reason: "busy", delay: .zero, lockHeld: true)) == .deferred)
        #expect(try q.job(17)?.fence == nil && q.job(17)?.nextTarget == "bronze")
        #expect(try q.submit(17, 30000).outcome == .updated)
        #expect(try q.job(17)?.nextTarget == nil)
        #expect(try q.job(17)?.nextQueuedBy == nil, "who asked for the withdrawn follow-up goes with it")
        trace.add(shape(try q.job(17)))
        #expect(try q.promote() == 1)
        let third = try #require(try q.next("w2"))
        #expect(try q.failed(third) == .retrying, "not dropped for the withdrawn follow-up")
        trace.add(shape(try q.job(17)))
        return trace
    }

    static let levelsSeen: Scenario = { q in
        var trace = Trace()
        #expect(try q.session.control(.levelsSeen(adding: [])) == .names([]))
        #expect(try q.session.control(.levelsSeen(adding: ["silver", "gold"])) == .names(["gold", "silver"]))
        #expect(try q.session.control(.levelsSeen(adding: ["gold"])) == .names(["gold", "silver"]))
        trace.add("\(try q.session.control(.levelsSeen(adding: [])))")
        return trace
    }

    /// A reconcile run records what it asks other hosts' workers about (`HostInquiry`): the digest
    /// of its secret and, per content, the filename; another run's token or content is nothing.
    static let inquiries: Scenario = { q in
        var trace = Trace()
        #expect(try q.session.control(.inquiry(token: "ab12", cid: 7)) == .names([]))
        #expect(try q.session.control(.inquire(token: "ab12", key: "digest", cid: 7, filename: "movies/a.mp4", ttl: .seconds(3600))) == .done)
        #expect(try q.session.control(.inquire(token: "ab12", key: "digest", cid: 8, filename: "b.mp4", ttl: .seconds(3600))) == .done)
        #expect(try q.session.control(.inquiry(token: "ab12", cid: 7)) == .names(["digest", "movies/a.mp4"]))
        #expect(try q.session.control(.inquiry(token: "ab12", cid: 8)) == .names(["digest", "b.mp4"]))
        #expect(try q.session.control(.inquiry(token: "ab12", cid: 9)) == .names([]))
        #expect(try q.session.control(.inquiry(token: "cd34", cid: 7)) == .names([]))
        trace.add("\(try q.session.control(.inquiry(token: "ab12", cid: 7)))")
        return trace
    }

    /// A content removed from the store (`contents remove`): the queue forgets when it last moved
    /// and its hits, so a read of its level older than that change counts again, and hits start
    /// afresh.
    /// A content renamed while leased: a job a count made meanwhile (from a read of the old name)
    /// takes the new name, queued or put off by a slot that found the content held; not for a
    /// holder whose lease it is not; a job already taken keeps the name its move uses.
    static let renamedWhileHeld: Scenario = { q in
        var trace = Trace()
        #expect(try q.submit(18).outcome == .created)
        let taken = try #require(try q.next())
        _ = try q.session.control(.levelChanged(cid: 18, filename: "g18", holder: "rename-0"))
        #expect(try q.job(18)?.filename == "f18")
        #expect(try q.session.control(.lease(cid: 17, token: "rename-1", ttl: .seconds(60))) == .flag(true))
        #expect(try q.submit(17).outcome == .created)
        _ = try q.session.control(.levelChanged(cid: 17, filename: "g17", holder: "rename-1"))
        #expect(try q.job(17)?.filename == "g17")
        _ = try q.session.control(.levelChanged(cid: 17))
        #expect(try q.job(17)?.filename == "g17", "a change of level alone keeps the name")
        _ = try q.session.control(.levelChanged(cid: 17, filename: "h17", holder: "rename-2"))
        #expect(try q.job(17)?.filename == "g17", "not the holder's lease")
        // A slot that takes it while held puts it off (not back onto its queue); renamed all the same.
        #expect(try q.next() == nil)
        let held = try #require(try q.job(17))
        #expect(held.status == .deferred && held.deferReason == HeldContent.deferReason && held.dueAt != nil)
        _ = try q.session.control(.levelChanged(cid: 17, filename: "i17", holder: "rename-1"))
        #expect(try q.job(17)?.filename == "i17")
        trace.add("taken \(taken.job.cid): \(try q.job(18)?.filename ?? "-"); made while held: \(try q.job(17)?.filename ?? "-"), "
                  + "\(held.status.rawValue), \(held.deferReason ?? "-")")
        return trace
    }

    /// A read from before a move's commit is put right by the committed job (it knows the level),
    /// unless the content was renamed after that commit: the job does not know the name, and a
    /// job made from that read would take the old one — the read is stale.
    static let renamedAfterCommit: Scenario = { q in
        var trace = Trace()
        func submitReadBefore(_ cid: Int64) throws -> SubmitResult {
            try q.session.submit([SubmitRequest(cid: cid, count: 5000, filename: "f\(cid)", dbLevel: "bronze", target: "silver", readAt: 1)])[0]
        }
        for cid: Int64 in [19, 20] {
            #expect(try q.submit(cid).outcome == .created)
            let delivery = try #require(try q.next())
            #expect(try q.moved(delivery) == .done)
        }
        _ = try q.commitAll()
        #expect(try q.job(19)?.status == .committed && q.job(20)?.status == .committed)
        _ = try q.session.control(.levelChanged(cid: 20, filename: "g20", holder: "rename-9"))
        let kept = try submitReadBefore(19)
        #expect(kept.outcome == .created && kept.job?.dbLevel == "gold" && kept.job?.filename == "f19")
        let renamed = try submitReadBefore(20)
        #expect(renamed.outcome == .staleLevel)
        trace.add("a read before the commit: \(kept.outcome.rawValue) from \(kept.job?.dbLevel ?? "-"); renamed after it: \(renamed.outcome.rawValue)")
        return trace
    }

    /// A move commits with a follow-up back to where the file came from: the follow-up waits,
    /// made from the level just reached. A count read before that commit names the level the file
    /// left; were the follow-up re-aimed from there, the next count would take the file for where
    /// it was and drop the job — the file left where no count wants it. The read is stale; read
    /// again, the count finds the follow-up as it is.
    static let followUpNotReaimedFromAnOldRead: Scenario = { q in
        var trace = Trace()
        #expect(try q.submit(26, to: "silver").outcome == .created)
        let delivery = try #require(try q.next())
        #expect(try q.submit(26, to: "bronze").outcome == .followUp)
        #expect(try q.moved(delivery) == .done)
        _ = try q.commitAll()
        let followUp = try #require(try q.job(26))
        #expect(followUp.status == .queued && followUp.dbLevel == "silver" && followUp.target == "bronze")
        let old = try q.session.submit([SubmitRequest(cid: 26, count: 5000, filename: "f26", dbLevel: "bronze", target: "silver", readAt: 1)])[0]
        #expect(old.outcome == .staleLevel)
        let after = try #require(try q.job(26))
        #expect(after.gen == followUp.gen && after.dbLevel == "silver" && after.target == "bronze" && after.status == .queued)
        // Read again: the file is where this count wants it, and the follow-up goes.
        let again = try q.submit(26, 5000, from: "silver", to: "silver")
        #expect(again.outcome == .dropped)
        trace.add("follow-up \(followUp.dbLevel) → \(followUp.target); a read from before its commit: \(old.outcome.rawValue); "
                  + "read again: \(again.outcome.rawValue)")
        return trace
    }

    /// A content moved to gold; a move back to silver published its copy there and failed; a count
    /// for gold reversed the job (the file is on silver, the database says gold). A count that read
    /// silver before the move to gold took the file for being where it wants it: were the reversed
    /// job dropped, the database would say gold of a file left on silver. The read is stale.
    static let reversedNotDroppedOnAnOldRead: Scenario = { q in
        var trace = Trace()
        #expect(try q.submit(27, from: "silver", to: "gold").outcome == .created)
        #expect(try q.moved(try #require(try q.next())) == .done)
        _ = try q.commitAll()
        #expect(try q.submit(27, 5000, from: "gold", to: "silver").outcome == .created)
        let delivery = try #require(try q.next())
        #expect(try q.session.record(delivery, .publishing(QueueUnderTest.checksum, bytes: 10)))
        #expect(try q.session.record(delivery, .published))
        #expect(try q.failed(delivery) == .retrying)
        #expect(try q.submit(27, 20000, from: "gold", to: "gold").outcome == .reversed)
        let reversed = try #require(try q.job(27))
        #expect(reversed.dbLevel == "silver" && reversed.target == "gold")
        let old = try q.session.submit([SubmitRequest(cid: 27, count: 5000, filename: "f27", dbLevel: "silver", target: "silver", readAt: 1)])[0]
        #expect(old.outcome == .staleLevel)
        #expect(try q.job(27)?.gen == reversed.gen)
        trace.add("reversed \(reversed.dbLevel) → \(reversed.target); a read of silver from before the move to gold: \(old.outcome.rawValue)")
        return trace
    }

    /// A rename's leases, new names and releases as one batch (`controls`: a pipeline on Redis):
    /// each answers as it would alone — a content with a job in flight refuses its lease — and a
    /// batch with another action goes one at a time.
    static let renameActionsTogether: Scenario = { q in
        var trace = Trace()
        #expect(try q.submit(24).outcome == .created)
        _ = try #require(try q.next())
        let leases = try q.session.controls([.lease(cid: 23, token: "rename-7", ttl: .seconds(60)), .lease(cid: 24, token: "rename-7", ttl: .seconds(60))])
        #expect(leases == [.flag(true), .flag(false)])
        #expect(try q.submit(23).outcome == .created)
        let named = try q.session.controls([.levelChanged(cid: 23, filename: "g23", holder: "rename-7"), .unlease(cid: 23, token: "rename-7")])
        #expect(named == [.done, .done])
        // Released: the job made while held is taken, by its new name.
        let taken = try #require(try q.next())
        #expect(taken.job.cid == 23 && taken.job.filename == "g23")
        let mixed = try q.session.controls([.unlease(cid: 24, token: "rename-7"), .pause(level: "silver"), .resume(level: "silver")])
        #expect(mixed.count == 3)
        trace.add("leases \(leases), then \(named), taken \(taken.job.filename); mixed \(mixed)")
        return trace
    }

    static let forgetContent: Scenario = { q in
        var trace = Trace()
        func hit() throws -> Double {
            guard case .value(let value) = try q.session.control(.hit(cid: 16, hits: 1, halfLife: .seconds(365 * 86400))) else { throw Unexpected() }
            return value
        }
        func submitReadLongAgo() throws -> SubmitOutcome {
            try q.session.submit([SubmitRequest(cid: 16, count: 20000, filename: "f16", dbLevel: "bronze", target: "gold", readAt: 1)])[0].outcome
        }
        _ = try hit()
        let twice = try hit()
        #expect(twice > 1.99)
        _ = try q.session.control(.levelChanged(cid: 16))
        #expect(try submitReadLongAgo() == .staleLevel)
        #expect(try q.session.control(.forgetContent(cid: 16, levels: ["gold", "silver", "bronze"])) == .done)
        let fresh = try hit()
        #expect(fresh < 1.01, "hits start afresh")
        let outcome = try submitReadLongAgo()
        #expect(outcome == .created)
        trace.add("hits \(Int(twice.rounded())) then \(Int(fresh.rounded())); a read from before: \(outcome.rawValue)")
        return trace
    }

    /// What `status`, the dashboard and the metrics show of the workers: each live heartbeat's
    /// fields, as its process sent them, with when it was stamped.
    static let heartbeatsInStats: Scenario = { q in
        var trace = Trace()
        let beat = Heartbeat(id: "w1", kind: .worker, host: "h1", pid: 42, levels: ["gold", "silver"], concurrency: 2, startedAt: 1_800_000_000_000,
                             disks: DiskReport(levels: ["gold": .init(used: 1, free: 2, size: 3)]), directories: ["gold": "/data/ssd"],
                             unavailable: ["silver"], metricsPort: 9464)
        _ = try q.session.maintain(MaintenanceRequest(beat: beat, ttl: .seconds(60)))
        _ = try q.session.maintain(MaintenanceRequest(beat: Heartbeat(id: "c1", kind: .committer), ttl: .seconds(60)))
        let workers = try q.session.stats(levels: ["gold"]).workers.sorted { $0.id < $1.id }
        #expect(workers.map(\.id) == ["c1", "w1"] && workers.allSatisfy(\.alive))
        for worker in workers {
            #expect(worker.info[.beatAt].flatMap { Int64($0) } != nil, "\(worker.id) is stamped")
            let fields = worker.info.filter { $0.key != .beatAt }.map { "\($0.key.rawValue)=\($0.value)" }.sorted()
            trace.add("\(worker.id): \(fields.joined(separator: " "))")
        }
        #expect(Heartbeat(id: "w1", fields: workers[1].info).disks == beat.disks)
        return trace
    }

    static let undecodable: Scenario = { q in
        var trace = Trace()
        try q.submit(15)
        // A job whose attempts field another program mangled.
        try q.mangle(15, .attempts, "many")
        guard case .undecodable(let held, let token, let problem) = try q.session.next(NextRequest(worker: "w1", levels: ["gold"], rotation: 0,
                                                                                                 wait: .zero)) else { throw Unexpected() }
        #expect(problem.contains("attempts"))
        _ = try q.session.control(.bury(held, worker: "w1", token: token, problem: problem))
        #expect(try q.session.deadLetters().map(\.id) == [held.id])
        trace.add(problem)
        return trace
    }

    struct Unexpected: Error {}
}

/// Polls `condition` until it holds or `timeout` passes.
func waitUntil(_ what: String, timeout: Duration = .seconds(10), _ condition: () throws -> Bool) throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try condition() { return }
        usleep(2_000)
    }
    throw TimedOut(what: what)
}

struct TimedOut: Error, CustomStringConvertible {
    let what: String
    var description: String { "timed out waiting for \(what)" }
}
