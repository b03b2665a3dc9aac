import FileMover
import Foundation
import JobQueue
import Logging
import RedisClient
import RelocatorCore
@testable import RelocatorServices
import Synchronization
import Testing
import TestSupport

/// A worker of two slots on the real Redis and real files, from a deep queue: a free slot takes
/// a job for each slot in one take, and the ones beyond its own wait in the worker (claimed
/// ahead) for its next free slots. Each test first brings the worker where both slots move and a
/// job waits claimed ahead — an id in its processing list that no move has reached — and then
/// shows what becomes of it: moved by the next free slot, given back when its level is paused,
/// given back at a stop.
@Suite struct ClaimedAheadTests {
    /// The real mover behind a gate: each move waits there until the test lets it through (in
    /// the order they came), all of them once the gate is open, or until the worker cancels it.
    final class GatedMover: FileMoving, Sendable {
        struct State {
            var arrived: [String] = []
            var passed = 0
            var allowance = 0
            var open = false
        }
        let state = Mutex(State())
        let mover = FileMover()

        func move(_ request: MoveRequest, hooks: MoveHooks) throws -> MoveResult {
            let index = state.withLock { state in
                state.arrived.append(request.filename.value)
                return state.arrived.count - 1
            }
            while !state.withLock({ $0.open || index < $0.allowance }) {
                if hooks.shouldStop() {
                    state.withLock { $0.passed += 1 }
                    throw MoveError(.cancelled, "stopped at the test's gate")
                }
                usleep(2_000)
            }
            state.withLock { $0.passed += 1 }
            return try mover.move(request, hooks: hooks)
        }

        var arrived: [String] { state.withLock { $0.arrived } }
        /// Moves waiting at the gate, none of them let through.
        var waiting: Int { state.withLock { $0.arrived.count - $0.passed } }
        var settled: Bool { state.withLock { $0.allowance <= $0.passed } }
        func letOneThrough() { state.withLock { $0.allowance = $0.passed + 1 } }
        func openGate() { state.withLock { $0.open = true } }
    }

    /// The levels as directories of their own (one filesystem: a move hashes, links, removes),
    /// `count` files on bronze with a job each to gold, and a worker of two slots over them.
    final class Fixture: @unchecked Sendable {
        let redisQueue: RedisTestQueue
        let root: TemporaryDirectory
        let mover = GatedMover()
        let worker: Worker
        let cids: [Int64]
        var sums: [Int64: String] = [:]
        private let finished = StopSignal()
        private var started = false

        init(_ name: String, count: Int) throws {
            let root = try TemporaryDirectory("relocator-ahead")
            do {
                redisQueue = try RedisTestQueue(name)
            } catch {
                root.remove()
                throw error
            }
            self.root = root
            cids = (1...Int64(count)).map { $0 }
            let directories = LevelDirectories(["gold", "silver", "bronze"].map { ($0, root.path + "/" + $0) })
            var settings = Worker.Settings(id: "w1", levels: ["gold", "silver", "bronze"], directories: directories, concurrency: 2,
                                           retry: RetryPolicy(base: .milliseconds(50), cap: .milliseconds(200), maxAttempts: 3),
                                           heartbeatTTL: .milliseconds(600), gracePeriod: .seconds(30))
            settings.idleWait = .milliseconds(50)
            worker = Worker(settings: settings, driver: redisQueue.driver, mover: mover, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        }

        /// The files on bronze and their jobs to gold (after `init`, so that `cleanUp` removes them
        /// whatever fails here).
        func populate() throws {
            for level in ["gold", "silver", "bronze"] { try TestFiles.makeReservedDirectory(in: root.path + "/" + level) }
            for cid in cids { sums[cid] = try TestFiles.make(source(cid), bytes: 4096 + Int(cid)) }
            _ = try redisQueue.queue.submitMany(cids.map { (cid: $0, count: 20000, filename: Self.filename($0), dbLevel: "bronze", target: "gold", queuedBy: nil) },
                                                readAt: JobQueue.nowMilliseconds(), on: redisQueue.redis)
        }

        static func filename(_ cid: Int64) -> String { "f\(cid).bin" }
        func source(_ cid: Int64) -> String { root.path + "/bronze/" + Self.filename(cid) }
        func target(_ cid: Int64) -> String { root.path + "/gold/" + Self.filename(cid) }
        var shard: ShardKeys { redisQueue.queue.keys.shard(0) }
        var redis: RedisConnection { redisQueue.redis }

        func start() {
            started = true
            BlockingExecutor.thread(named: "test-worker") {
                do { try self.worker.runBlocking() } catch { Issue.record("the worker failed: \(error)") }
                self.finished.raise()
            }
        }

        func stop() throws {
            worker.stop()
            mover.openGate()
            guard finished.wait(for: .seconds(60)) else { throw TimedOut(what: "the worker stops") }
        }

        /// Stops the worker if it still runs, removes the test's keys and directories.
        func cleanUp() {
            if started && !finished.isRaised { try? stop() }
            redisQueue.cleanUp()
            root.remove()
        }

        func list(_ key: String) throws -> [String] { try redis.send("LRANGE", key, 0, -1).array?.compactMap(\.string) ?? [] }
        func job(_ cid: Int64) throws -> Job? { try redisQueue.queue.job(cid: cid, on: redis) }

        /// The ids in the worker's processing list whose move has not begun: claimed ahead.
        func claimedAheadInRedis() throws -> [JobID] {
            let arrived = Set(mover.arrived)
            return try list(shard.processing("w1")).compactMap(JobID.init).filter { !arrived.contains(Self.filename($0.cid)) }
        }

        /// Lets the moves through one at a time until both slots wait at the gate while at least one
        /// job waits claimed ahead (at most a few rounds: a slot that takes from a deep queue when
        /// nothing waits ahead takes one more than its own). Returns those jobs.
        func untilJobsWaitAhead() throws -> [JobID] {
            var ahead: [JobID] = []
            try waitUntil("both slots move and a job waits claimed ahead", timeout: .seconds(60)) {
                // Both slots wait at the gate (none let through): nothing takes or claims meanwhile.
                guard mover.waiting == 2, mover.settled else { return false }
                ahead = try claimedAheadInRedis()
                if !ahead.isEmpty { return true }
                mover.letOneThrough()
                return false
            }
            return ahead
        }
    }

    @Test func jobsClaimedAheadAreMovedByTheNextFreeSlotsEachOnce() throws {
        let f = try Fixture("ahead-moved", count: 30)
        defer { f.cleanUp() }
        try f.populate()
        f.start()
        let ahead = try f.untilJobsWaitAhead()
        // Taken and claimed for this worker, in its hands only: the file is where it was.
        #expect(Set(f.worker.claimedAhead.withLock { $0.map(\.id) }) == Set(ahead))
        for id in ahead {
            let job = try #require(try f.job(id.cid))
            #expect(job.status == .moving && job.workerID == "w1" && job.token == 1 && job.attempts == 0)
            #expect(TestFiles.exists(f.source(id.cid)) && !TestFiles.exists(f.target(id.cid)))
        }
        f.mover.openGate()
        try waitUntil("every job is moved", timeout: .seconds(60)) { try f.cids.allSatisfy { try f.job($0)?.status == .done } }
        // Each file moved once, by one claim (a job given back and claimed again would show a
        // second token), verified: the bytes at the target are the source's.
        #expect(f.mover.arrived.sorted() == f.cids.map(Fixture.filename).sorted())
        for cid in f.cids {
            let job = try #require(try f.job(cid))
            #expect(job.token == 1 && job.attempts == 0, "job \(cid): token \(String(describing: job.token)), \(job.attempts) attempts")
            #expect(!TestFiles.exists(f.source(cid)))
            #expect(try TestFiles.sha256(f.target(cid)) == f.sums[cid])
            #expect(job.checksum == (try TestFiles.recordedChecksum(f.target(cid))))
        }
        try waitUntil("nothing is held") { try f.list(f.shard.processing("w1")).isEmpty }
        #expect(try f.list(f.shard.queue("gold")).isEmpty)
        try f.stop()
    }

    @Test func aJobClaimedAheadWhoseLevelIsPausedGoesBackUntouchedAndMovesAfterTheResume() throws {
        let f = try Fixture("ahead-paused", count: 20)
        defer { f.cleanUp() }
        try f.populate()
        f.start()
        let ahead = try f.untilJobsWaitAhead()
        let before = try ahead.map { try #require(try f.job($0.cid)) }
        _ = try f.redisQueue.session.control(.pause(level: "gold"))
        try waitUntil("the worker reads gold paused") { f.worker.pausedLevels.withLock { $0.contains("gold") } }
        // A slot is free: it finds gold paused, gives back what waits ahead and takes no gold job.
        f.mover.letOneThrough()
        try waitUntil("the jobs claimed ahead are back in gold's queue and no longer held") {
            let queued = Set(try f.list(f.shard.queue("gold")))
            let held = Set(try f.list(f.shard.processing("w1")))
            return ahead.allSatisfy { queued.contains($0.description) && !held.contains($0.description) }
        }
        #expect(f.worker.claimedAhead.withLock { $0.isEmpty })
        for (id, earlier) in zip(ahead, before) {
            let job = try #require(try f.job(id.cid))
            #expect(job.status == .queued && job.workerID == nil && job.attempts == earlier.attempts && job.attempts == 0)
            #expect(job.gen == earlier.gen && job.fence == nil && job.lastError == nil)
            #expect(TestFiles.exists(f.source(id.cid)) && !TestFiles.exists(f.target(id.cid)))
            #expect(!f.mover.arrived.contains(Fixture.filename(id.cid)))
        }
        // While gold is paused, the free slot starts no move of it.
        #expect(f.mover.waiting <= 1)
        _ = try f.redisQueue.session.control(.resume(level: "gold"))
        f.mover.openGate()
        try waitUntil("every job is moved after the resume", timeout: .seconds(60)) { try f.cids.allSatisfy { try f.job($0)?.status == .done } }
        #expect(f.mover.arrived.sorted() == f.cids.map(Fixture.filename).sorted())
        for cid in f.cids {
            #expect(try f.job(cid)?.attempts == 0)
            #expect(try TestFiles.sha256(f.target(cid)) == f.sums[cid])
        }
        try f.stop()
    }

    @Test func aStoppedWorkerGivesBackTheJobsClaimedAheadWithoutCountingAnAttempt() throws {
        let f = try Fixture("ahead-stop", count: 20)
        defer { f.cleanUp() }
        try f.populate()
        f.start()
        let ahead = try f.untilJobsWaitAhead()
        let moving = Set(f.mover.arrived)
        // The moves in flight finish within the grace period (stop opens the gate); the jobs that
        // waited ahead go back as they were.
        try f.stop()
        #expect(try f.list(f.shard.processing("w1")).isEmpty)
        let queued = Set(try f.list(f.shard.queue("gold")))
        for id in ahead {
            #expect(queued.contains(id.description), "\(id) is not back in gold's queue")
            let job = try #require(try f.job(id.cid))
            #expect(job.status == .queued && job.workerID == nil && job.attempts == 0 && job.fence == nil && job.lastError == nil)
            #expect(TestFiles.exists(f.source(id.cid)) && !TestFiles.exists(f.target(id.cid)))
        }
        #expect(Set(f.mover.arrived) == moving)
        for cid in f.cids where moving.contains(Fixture.filename(cid)) {
            #expect(try f.job(cid)?.status == .done)
        }
        // Every job is either moved or queued again: none is lost or left held.
        for cid in f.cids {
            let job = try #require(try f.job(cid))
            #expect(job.status == .done || (job.status == .queued && queued.contains(job.id)), "job \(cid) is \(job.status)")
        }
        #expect(try f.redisQueue.session.heartbeats().isEmpty)
    }

    /// Jobs are claimed ahead only without a max-moves limit; one published while they wait sends
    /// them back (each move needs a permit now, which none of them holds), and every job moves
    /// under the limit. Kept, they would wait held by this worker until it stopped.
    @Test func aMaxMovesLimitPublishedWhileJobsWaitAheadSendsThemBackAndEveryJobMoves() throws {
        let f = try Fixture("ahead-limit", count: 20)
        defer { f.cleanUp() }
        try f.populate()
        f.start()
        let ahead = try f.untilJobsWaitAhead()
        _ = try f.redisQueue.session.control(.publishPlacement(PlacementSnapshot(levels: LevelRange.defaults, policies: ["gold": LevelPolicy(maxMoves: 1)],
                                                                                 halfLife: nil)))
        try waitUntil("the worker reads the limit") { f.worker.placement.withLock { $0?.policies["gold"]?.maxMoves } == 1 }
        f.mover.openGate()
        try waitUntil("every job is moved", timeout: .seconds(60)) { try f.cids.allSatisfy { try f.job($0)?.status == .done } }
        #expect(f.worker.claimedAhead.withLock { $0.isEmpty })
        #expect(f.mover.arrived.sorted() == f.cids.map(Fixture.filename).sorted())
        for id in ahead {
            #expect(try f.job(id.cid)?.attempts == 0)
            #expect(try TestFiles.sha256(f.target(id.cid)) == f.sums[id.cid])
        }
        try waitUntil("nothing is held") { try f.list(f.shard.processing("w1")).isEmpty }
        try f.stop()
    }
}
