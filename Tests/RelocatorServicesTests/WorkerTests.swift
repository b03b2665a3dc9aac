import FileMover
import Logging
import Foundation
import JobQueue
import RelocatorCore
import RelocatorFaults
import RelocatorServices
import RelocatorTesting
import Synchronization
import Testing

/// The worker's rules on the memory queue and a fake mover: no server, no root, milliseconds.
@Suite struct WorkerTests {
    @Test func aClaimedJobIsMovedFromItsLevelToItsTargetAndAcknowledged() throws {
        let h = WorkerHarness()
        h.queue.submit(cid: 7, count: 20000, filename: "movies/g.mp4", dbLevel: "bronze", target: "gold")
        h.start()
        defer { try? h.stop() }
        try waitUntil("the move is acknowledged") { h.queue.job(7)?.status == .done }
        let request = try #require(h.mover.requests.first)
        #expect(request.source == LevelPlace(level: "bronze", directory: "/levels/bronze"))
        #expect(request.target == LevelPlace(level: "gold", directory: "/levels/gold"))
        #expect(request.others.map(\.level) == ["silver"] && request.filename.value == "movies/g.mp4")
        let job = try #require(h.queue.job(7))
        #expect(job.checksum == "xxh128:" + String(repeating: "ab", count: 16) && job.bytes == 1000 && job.part == nil)
        #expect(h.queue.list(h.queue.keys.shard(0).done) == [job.id])
        #expect(h.queue.list(h.queue.keys.shard(0).processing("w1")).isEmpty)
    }

    @Test func aTransientFailureIsRetriedAfterItsBackoffAndThenSucceeds() throws {
        let mover = FakeMover { request, hooks, attempt in
            if attempt == 1 { throw MoveError(.noSpace, "gold is full") }
            return try FakeMover.succeed(request, hooks, attempt)
        }
        // A backoff of an hour: the retry waits for the queue's clock, which the test moves.
        let h = WorkerHarness(retry: RetryPolicy(base: .seconds(3600), cap: .seconds(7200), maxAttempts: 3), mover: mover)
        h.queue.submit(cid: 8, count: 20000, filename: "a", dbLevel: "bronze", target: "gold")
        h.start()
        defer { try? h.stop() }
        try waitUntil("the retry is scheduled") { h.queue.job(8)?.status == .retrying }
        let retrying = try #require(h.queue.job(8))
        #expect(retrying.attempts == 1 && retrying.reason == "no_space" && retrying.lastError == "no_space: gold is full")
        // Due after the first backoff, jittered within [base/2, base].
        let due = try #require(h.queue.scheduled(h.queue.keys.shard(of: 8).retry)[retrying.id])
        #expect(due - retrying.updatedAt >= 1_800_000 && due - retrying.updatedAt <= 3_600_000, "due \(due - retrying.updatedAt) ms after the failure")
        #expect(mover.requests.count == 1)
        h.queue.advance(.seconds(3600))
        try waitUntil("the retry succeeds") { h.queue.job(8)?.status == .done }
        #expect(h.queue.job(8)?.earlierError == "no_space: gold is full" && h.queue.job(8)?.lastError == nil)
        #expect(mover.requests.count == 2)
    }

    @Test func aPermanentFailureGoesToTheDeadLetterListAtOnce() throws {
        let mover = FakeMover { _, _, _ in throw MoveError(.sourceMissing, "a is on no level's disk") }
        let h = WorkerHarness(mover: mover)
        h.queue.submit(cid: 9, count: 20000, filename: "a", dbLevel: "bronze", target: "gold")
        h.start()
        defer { try? h.stop() }
        try waitUntil("the job is dead") { h.queue.job(9)?.status == .dead }
        #expect(h.queue.job(9)?.attempts == 1 && h.queue.job(9)?.reason == "source_missing" && mover.requests.count == 1)
    }

    @Test func aChecksumMismatchIsRetriedOnceThenPermanent() throws {
        let mover = FakeMover { _, _, _ in throw MoveError(.checksumMismatch, "read back differs") }
        let h = WorkerHarness(retry: RetryPolicy(base: .milliseconds(20), cap: .milliseconds(20), maxAttempts: 10), mover: mover)
        h.queue.submit(cid: 10, count: 20000, filename: "a", dbLevel: "bronze", target: "gold")
        h.start()
        defer { try? h.stop() }
        try waitUntil("the job is dead") { h.queue.job(10)?.status == .dead }
        #expect(h.queue.job(10)?.attempts == 2 && mover.requests.count == 2)
    }

    @Test func aLevelWithoutADirectoryIsAnUnknownLevelNotAnInvalidFilename() throws {
        let h = WorkerHarness()
        // The file is on a level this worker's machine has no directory for.
        h.queue.submit(cid: 11, count: 20000, filename: "a", dbLevel: "platinum", target: "gold")
        h.start()
        defer { try? h.stop() }
        try waitUntil("the job is dead") { h.queue.job(11)?.status == .dead }
        #expect(h.queue.job(11)?.reason == "unknown_level")
        #expect(h.queue.job(11)?.lastError?.contains("level 'platinum' has no directory on this worker") == true)
        #expect(h.mover.requests.isEmpty)
    }

    @Test func aJobThatCannotBeReadIsDeadLetteredWithTheReason() throws {
        let h = WorkerHarness()
        h.queue.submit(cid: 12, count: 20000, filename: "null", dbLevel: "bronze", target: "gold")
        h.queue.submit(cid: 13, count: 20000, filename: "b", dbLevel: "bronze", target: "gold")
        h.queue.corrupt(cid: 13, field: .stage, value: "halfway")
        h.start()
        defer { try? h.stop() }
        try waitUntil("the readable job is moved and the other is dead") {
            h.queue.job(12)?.status == .done && h.queue.hash(h.queue.keys.shard(0).job(13))["status"] == "dead"
        }
        #expect(h.queue.hash(h.queue.keys.shard(0).job(13))["reason"] == "undecodable_job")
        #expect(h.mover.requests.map(\.filename.value) == ["null"])
    }

    @Test func aStopHandsBackTheMoveInFlightAfterTheGracePeriodWithoutCountingAnAttempt() throws {
        let started = Mutex(false)
        let mover = FakeMover { _, hooks, _ in
            started.withLock { $0 = true }
            while !hooks.shouldStop() { usleep(1000) }
            throw MoveError(.cancelled, "stopped")
        }
        let h = WorkerHarness(grace: .milliseconds(100), mover: mover)
        h.queue.submit(cid: 14, count: 20000, filename: "a", dbLevel: "bronze", target: "gold")
        h.start()
        try waitUntil("the move starts") { started.withLock { $0 } }
        try h.stop()
        let job = try #require(h.queue.job(14))
        #expect(job.status == .queued && job.attempts == 0 && job.workerID == nil)
        #expect(h.queue.list(h.queue.keys.shard(0).queue("gold")) == [job.id])
        #expect(h.queue.list(h.queue.keys.shard(0).processing("w1")).isEmpty)
        #expect(try h.queue.heartbeats().isEmpty)
    }

    @Test func anIdHeldInTheQueueButByNoSlotIsGivenBackAndMoved() throws {
        let h = WorkerHarness(levels: ["silver"])
        h.queue.submit(cid: 15, count: 20000, filename: "a", dbLevel: "bronze", target: "gold")
        // A take whose reply was lost: the id sits in w1's processing list; no slot knows it.
        h.queue.loseTake(worker: "w1", level: "gold")
        h.start()
        defer { try? h.stop() }
        try waitUntil("the lost id goes back to its queue") { h.queue.list(h.queue.keys.shard(0).queue("gold")).count == 1 }
        #expect(h.queue.job(15)?.status == .queued)
    }

    @Test func aPausedLevelIsNotTakenUntilResumed() throws {
        let h = WorkerHarness()
        h.queue.pause("gold")
        h.queue.submit(cid: 16, count: 20000, filename: "a", dbLevel: "bronze", target: "gold")
        h.queue.submit(cid: 17, count: 2000, filename: "b", dbLevel: "bronze", target: "silver")
        h.start()
        defer { try? h.stop() }
        try waitUntil("silver's job moves") { h.queue.job(17)?.status == .done }
        usleep(300_000)
        #expect(h.queue.job(16)?.status == .queued)
        h.queue.resume("gold")
        try waitUntil("gold's job moves after the resume") { h.queue.job(16)?.status == .done }
    }

    @Test func aDeliveryReapedDuringItsMoveStopsBeforePublishingAndANewCountFollowsAfterTheCommit() throws {
        let queue = MemoryQueue()
        let mover = FakeMover { request, hooks, attempt in
            if attempt == 1 {
                // Reaped while copying (a paused process looks dead): the job went back, fenced, and
                // a newer count arrived. The delivery may still act, so the job is not re-aimed:
                // the count follows after the commit.
                _ = try queue.release(worker: "w1", fence: true)
                #expect(queue.submit(cid: 18, count: 2000, filename: "a", dbLevel: "bronze", target: "silver").outcome == .followUp)
                #expect(queue.job(18)?.fence != nil)
            }
            return try FakeMover.succeed(request, hooks, attempt)
        }
        let h = WorkerHarness(mover: mover, queue: queue)
        queue.submit(cid: 18, count: 20000, filename: "a", dbLevel: "bronze", target: "gold")
        h.start()
        defer { try? h.stop() }
        try waitUntil("the job is moved by the next delivery") { queue.job(18)?.status == .done }
        let job = try #require(queue.job(18))
        #expect(job.target == "gold" && job.nextTarget == "silver" && job.attempts == 0 && job.fence == nil)
        #expect(mover.requests.map(\.target.level) == ["gold", "gold"])
    }

    @Test func aLongMoveRecordsItsProgressInTheJob() throws {
        let queue = MemoryQueue()
        let seen = Mutex<Int64?>(nil)
        let mover = FakeMover { request, hooks, attempt in
            hooks.progress(40 << 20, 100 << 20)
            seen.withLock { $0 = queue.job(19)?.bytesDone }
            return try FakeMover.succeed(request, hooks, attempt)
        }
        let h = WorkerHarness(mover: mover, queue: queue)
        queue.submit(cid: 19, count: 20000, filename: "big", dbLevel: "bronze", target: "gold")
        h.start()
        defer { try? h.stop() }
        try waitUntil("the move ends") { queue.job(19)?.status == .done }
        #expect(seen.withLock { $0 } == 40 << 20)
        #expect(queue.job(19)?.bytesDone == nil)
    }

    @Test func theHeartbeatReportsTheWorkerAndItsDisks() throws {
        let h = WorkerHarness()
        h.start()
        defer { try? h.stop() }
        try waitUntil("the heartbeat") { try h.queue.heartbeats().first?.id == "w1" }
        let beat = try #require(try h.queue.heartbeats().first)
        #expect(beat.kind == .worker && beat.levels == ["gold", "silver", "bronze"] && beat.concurrency == 2)
        #expect(beat.directories == ["gold": "/levels/gold", "silver": "/levels/silver", "bronze": "/levels/bronze"])
    }

    @Test func theHeartbeatAdvertisesTheTransferAddressWithTheLevelsInService() throws {
        let h = WorkerHarness(transfer: TransferAddress(host: "10.0.0.7", port: 0))
        h.start()
        defer { try? h.stop() }
        // Nothing is offered before the endpoint listens.
        try waitUntil("the heartbeat") { try h.queue.heartbeats().first?.id == "w1" }
        #expect(try h.queue.heartbeats().first?.transfer == nil)
        h.worker.transferServed(on: 7400)
        try waitUntil("the advertisement") { try h.queue.heartbeats().first?.transfer != nil }
        let beat = try #require(try h.queue.heartbeats().first)
        #expect(beat.transfer == "10.0.0.7:7400" && beat.transferLevels == ["bronze", "gold", "silver"])
        #expect(TransferPeer.serving("gold", among: [beat], excluding: "w2").map(\.address) == [TransferAddress(host: "10.0.0.7", port: 7400)])
    }

    @Test func aWorkerWithoutATransferAddressAdvertisesNoneAsBefore() throws {
        let h = WorkerHarness()
        h.start()
        defer { try? h.stop() }
        try waitUntil("the heartbeat") { try h.queue.heartbeats().first?.id == "w1" }
        let beat = try #require(try h.queue.heartbeats().first)
        #expect(beat.transfer == nil && beat.transferLevels.isEmpty)
    }

    @Test func aQueueOutageIsWaitedOutAndNothingIsLost() throws {
        let h = WorkerHarness()
        h.queue.setUnavailable(true)
        h.start()
        defer { try? h.stop() }
        usleep(200_000)
        h.queue.setUnavailable(false)
        h.queue.submit(cid: 20, count: 20000, filename: "a", dbLevel: "bronze", target: "gold")
        try waitUntil("the job moves once the queue answers") { h.queue.job(20)?.status == .done }
    }
}

@Suite struct WorkerFaultTests {
    @Test func lostClaimRepliesAreGivenBackAndEveryJobIsMovedOnce() throws {
        let h = WorkerHarness(concurrency: 1)
        var faults = WorkerFaults()
        faults.loseReply = 2
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let worker = Worker(settings: h.worker.settings, driver: FaultyQueueDriver(h.queue, faults: faults, logger: logger), mover: h.mover,
                            logger: logger)
        for cid in Int64(1)...4 { h.queue.submit(cid: cid, count: 20000, filename: "f\(cid)", dbLevel: "bronze", target: "gold") }
        let done = StopSignal()
        BlockingExecutor.thread(named: "test-worker") {
            do { try worker.runBlocking() } catch { Issue.record("\(error)") }
            done.raise()
        }
        try waitUntil("every job is moved", timeout: .seconds(20)) { (1...4).allSatisfy { h.queue.job($0)?.status == .done } }
        worker.stop()
        #expect(done.wait(for: .seconds(10)))
        #expect(h.mover.requests.count == 4)
    }

    @Test func theFaultsOfTheEnvironmentAreParsedAndABadOneIsNamed() throws {
        let faults = try WorkerFaults(parsing: "fail-after=published*2,lose-reply=3,crash-before-ack")
        #expect(faults.loseReply == 3 && faults.crashBeforeAck && faults.move?.onStep != nil)
        #expect(throws: Never.self) { try faults.move?.onStep?(.copied) }
        #expect(throws: MoveError.self) { try faults.move?.onStep?(.published) }
        #expect(throws: MoveError.self) { try faults.move?.onStep?(.published) }
        #expect(throws: Never.self) { try faults.move?.onStep?(.published) }
        #expect(throws: ConfigurationError.self) { try WorkerFaults(parsing: "fail-after=nowhere") }
        for bad in ["=", "fail-after=*", "stop-after=*", "crash-after=", "pause-after=copied:3600001", "pause-after=copied:99999999999"] {
            #expect(throws: ConfigurationError.self, "\(bad)") { try WorkerFaults(parsing: bad) }
        }
        #expect(try WorkerFaults(parsing: nil).isActive == false)
    }
}
