import Foundation
import JobQueue
import Logging
import RelocatorCore
import RelocatorServices
import RelocatorTesting
import SQLStore
import Synchronization
import Testing
import TestSupport

/// The committer's rules on the memory queue and a SQLite file: no server, no root.
@Suite struct CommitterTests {
    /// A migrated SQLite database in a directory of its own, with the default levels and contents.
    final class Database: @unchecked Sendable {
        let directory: TemporaryDirectory
        let path: String
        /// While set, opening the database fails as an unreachable server would.
        let down = Mutex(false)

        init(contents: [(Int64, String, String)]) throws {
            directory = try TemporaryDirectory("relocator-committer")
            path = directory.path + "/db.sqlite"
            let db = try openDatabase(.sqlite(path: path), access: .create)
            defer { db.close() }
            _ = try Migrator(database: db, migrations: Migration.embedded(dialect: .sqlite)).migrate()
            try LevelStore(database: db).seed(LevelRange.defaults)
            for (cid, filename, level) in contents { try ContentStore(database: db).put(Content(cid: cid, filename: filename, level: level)) }
        }

        func open() throws -> any SQLDatabase {
            if down.withLock({ $0 }) { throw SQLError(code: .connectionRefused, location: "sqlite \(path)", message: "down for the test") }
            return try openDatabase(.sqlite(path: path), access: .readWrite)
        }

        func level(_ cid: Int64) throws -> String? {
            let db = try openDatabase(.sqlite(path: path), access: .readWrite)
            defer { db.close() }
            return try ContentStore(database: db).content(cid: cid)?.level
        }

        func relocations() throws -> [Relocation] {
            let db = try openDatabase(.sqlite(path: path), access: .readWrite)
            defer { db.close() }
            return try ContentStore(database: db).relocations(limit: 1000)
        }
    }

    /// Jobs moved to `done` as a worker would leave them.
    func moved(_ queue: MemoryQueue, _ cids: [Int64], to target: String = "gold") throws {
        for cid in cids { queue.submit(cid: cid, count: 20000, filename: "f\(cid)", dbLevel: "bronze", target: target) }
        while case .delivery(let delivery) = try queue.next(NextRequest(worker: "w1", levels: [target], rotation: 0, wait: .zero)) {
            #expect(try queue.complete(delivery, .moved(Self.checksum, bytes: 10, method: .copied, foundIn: nil)) == .done)
        }
    }

    static let checksum = try! Checksum(parsing: "xxh128:" + String(repeating: "01", count: 16))

    func committer(_ queue: any JobQueueDriver, _ database: Database, batch: Int = 100, linger: Duration = .milliseconds(20)) -> Committer {
        var settings = Committer.Settings(id: "c1", batch: batch, jobTTL: .seconds(60), heartbeatTTL: .milliseconds(300))
        settings.idleWait = .milliseconds(50)
        settings.linger = linger
        return Committer(settings: settings, driver: queue, openDatabase: { try database.open() },
                         logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    func start(_ committer: Committer) -> StopSignal {
        let done = StopSignal()
        BlockingExecutor.thread(named: "test-committer") {
            do { try committer.runBlocking() } catch { Issue.record("the committer failed: \(error)") }
            done.raise()
        }
        return done
    }

    @Test func doneJobsAreCommittedInBatchesWithOneRelocationEach() throws {
        let queue = MemoryQueue()
        let database = try Database(contents: (1...25).map { ($0, "f\($0)", "bronze") })
        defer { database.directory.remove() }
        try moved(queue, Array(1...25))
        let committer = committer(queue, database, batch: 10)
        let done = start(committer)
        try waitUntil("every job is committed") { (1...25).allSatisfy { queue.job($0)?.status == .committed } }
        committer.stop()
        #expect(done.wait(for: .seconds(10)))
        #expect(try (1...25).allSatisfy { try database.level($0) == "gold" })
        let rows = try database.relocations()
        #expect(rows.count == 25 && Set(rows.map(\.cid)) == Set(1...25) && rows.allSatisfy { $0.from == "bronze" && $0.to == "gold" })
        #expect(queue.list(queue.keys.shard(0).committing("c1")).isEmpty)
    }

    /// Group commit: after a small batch, the moves done while it was written (and for the rest of
    /// the linger) wait in `done` and are then taken together; without the linger the committer,
    /// blocked on `done`, takes each as it comes.
    @Test func theMovesDoneDuringTheLingerAfterASmallBatchAreCommittedAsOne() throws {
        let queue = MemoryQueue()
        let database = try Database(contents: (1...6).map { ($0, "f\($0)", "bronze") })
        defer { database.directory.remove() }
        let committer = committer(queue, database, linger: .seconds(6))
        let done = start(committer)
        defer {
            committer.stop()
            #expect(done.wait(for: .seconds(10)))
        }
        try moved(queue, [1])
        try waitUntil("the first batch is committed") { queue.job(1)?.status == .committed }
        try moved(queue, Array(2...6))
        // For a second of the linger's six, all five stay in `done`.
        let watched = ContinuousClock.now + .seconds(1)
        var waiting: [Int] = []
        while ContinuousClock.now < watched {
            waiting.append(queue.list(queue.keys.shard(0).done).count)
            usleep(10_000)
        }
        #expect(waiting.allSatisfy { $0 == 5 }, "moves waiting in done: \(waiting)")
        try waitUntil("the batch is committed") { (2...6).allSatisfy { queue.job($0)?.status == .committed } }
        #expect(try database.relocations().count == 6)
    }

    /// A queue whose committer's prefetch (a take of fresh jobs only) is held until the test says
    /// `go`, then until the committer has handed its jobs back, or for `most` when it never does:
    /// the order a paused thread would give, every time.
    final class HeldPrefetch: JobQueueDriver, @unchecked Sendable {
        let queue: MemoryQueue
        let most: Duration
        /// Raised by the test right before it stops the committer.
        let go = StopSignal()
        /// Raised once a release (`control(.release)`) has returned.
        let released = StopSignal()
        /// Raised once a held take has returned.
        let taken = StopSignal()
        /// Fresh takes asked once the test said `go`.
        let takesAfterGo = Mutex(0)
        /// While set, marking a batch committed fails as an unreachable Redis would.
        let commitFails = Mutex(false)

        struct Unreachable: Error {}

        init(_ queue: MemoryQueue, most: Duration) {
            self.queue = queue
            self.most = most
        }

        func session() -> any JobQueueSession { Session(inner: queue.session(), driver: self) }

        final class Session: QueueDecorator, @unchecked Sendable {
            let inner: any JobQueueSession
            let driver: HeldPrefetch

            init(inner: any JobQueueSession, driver: HeldPrefetch) {
                self.inner = inner
                self.driver = driver
            }

            func nextDone(committer: String, shard: Int, max: Int, wait: Duration, fresh: Bool) throws -> DoneBatch {
                guard fresh else { return try inner.nextDone(committer: committer, shard: shard, max: max, wait: wait, fresh: fresh) }
                if driver.go.isRaised { driver.takesAfterGo.withLock { $0 += 1 } }
                _ = driver.go.wait(for: .seconds(60))
                _ = driver.released.wait(for: driver.most)
                defer { _ = driver.taken.raise() }
                return try inner.nextDone(committer: committer, shard: shard, max: max, wait: wait, fresh: fresh)
            }

            func commit(_ batch: DoneBatch, committer: String?, levels: [String], policy: CountPolicy, keep: Duration) throws -> CommitResult {
                if driver.commitFails.withLock({ $0 }) { throw Unreachable() }
                return try inner.commit(batch, committer: committer, levels: levels, policy: policy, keep: keep)
            }

            func control(_ action: ControlAction) throws -> ControlResult {
                let result = try inner.control(action)
                if case .release = action { _ = driver.released.raise() }
                return result
            }
        }
    }

    enum Outage: String, CaseIterable, Sendable {
        /// The batch cannot be written in SQL.
        case database
        /// It is written, but cannot be marked committed in the queue.
        case queue
    }

    /// A batch that cannot be written or marked committed when the committer stops goes back to
    /// `done` only once the next batch's taking, under way meanwhile, has ended: what that taking
    /// holds goes back with it, and nothing is taken into `committing` after the hand-back.
    @Test(arguments: Outage.allCases)
    func aStopDuringAnOutageHandsBackTheBatchAndWhatItsPrefetchTook(outage: Outage) throws {
        let queue = MemoryQueue()
        let database = try Database(contents: (1...6).map { ($0, "f\($0)", "bronze") })
        defer { database.directory.remove() }
        let held = HeldPrefetch(queue, most: .seconds(2))
        switch outage {
        case .database: database.down.withLock { $0 = true }
        case .queue: held.commitFails.withLock { $0 = true }
        }
        let committer = committer(held, database, linger: .zero)
        try moved(queue, [1])
        let done = start(committer)
        defer { _ = held.go.raise(); committer.stop(); _ = done.wait(for: .seconds(20)) }
        let committing = queue.keys.shard(0).committing("c1")
        try waitUntil("the first batch is held") { queue.list(committing).count == 1 }
        try moved(queue, Array(2...6))
        _ = held.go.raise()
        committer.stop()
        #expect(done.wait(for: .seconds(20)))
        #expect(held.taken.wait(for: .seconds(20)), "the prefetch ended")
        #expect(queue.list(committing).isEmpty, "left in committing: \(queue.list(committing))")
        #expect(queue.list(queue.keys.shard(0).done).count == 6)
    }

    /// Once the committer is stopping, the prefetch that lingers after a small batch takes nothing.
    @Test func aLingeringPrefetchTakesNothingOnceTheCommitterStops() throws {
        let queue = MemoryQueue()
        let database = try Database(contents: (1...6).map { ($0, "f\($0)", "bronze") })
        defer { database.directory.remove() }
        let held = HeldPrefetch(queue, most: .zero)
        let committer = committer(held, database, linger: .seconds(30))
        try moved(queue, [1])
        let done = start(committer)
        defer { _ = held.go.raise(); committer.stop(); _ = done.wait(for: .seconds(20)) }
        try waitUntil("the first batch is committed") { queue.job(1)?.status == .committed }
        try moved(queue, Array(2...6))
        _ = held.go.raise()
        committer.stop()
        #expect(done.wait(for: .seconds(20)), "stopped well within the linger")
        #expect(held.takesAfterGo.withLock { $0 } == 0)
        #expect(queue.list(queue.keys.shard(0).done).count == 5)
        #expect(queue.list(queue.keys.shard(0).committing("c1")).isEmpty)
    }

    @Test func aDatabaseOutageKeepsTheBatchHeldAndCommitsItOnceBack() throws {
        let queue = MemoryQueue()
        let database = try Database(contents: (1...5).map { ($0, "f\($0)", "bronze") })
        defer { database.directory.remove() }
        database.down.withLock { $0 = true }
        try moved(queue, Array(1...5))
        let committer = committer(queue, database)
        let done = start(committer)
        try waitUntil("the batch is held") { queue.list(queue.keys.shard(0).committing("c1")).count == 5 }
        usleep(200_000)
        #expect((1...5).allSatisfy { queue.job($0)?.status == .done })
        database.down.withLock { $0 = false }
        try waitUntil("the batch is committed") { (1...5).allSatisfy { queue.job($0)?.status == .committed } }
        committer.stop()
        #expect(done.wait(for: .seconds(10)))
        #expect(try database.relocations().count == 5)
    }

    @Test func aStopDuringAnOutageHandsTheBatchBackToDone() throws {
        let queue = MemoryQueue()
        let database = try Database(contents: [(1, "f1", "bronze"), (2, "f2", "bronze")])
        defer { database.directory.remove() }
        database.down.withLock { $0 = true }
        try moved(queue, [1, 2])
        let committer = committer(queue, database)
        let done = start(committer)
        try waitUntil("the batch is held") { queue.list(queue.keys.shard(0).committing("c1")).count == 2 }
        committer.stop()
        #expect(done.wait(for: .seconds(10)))
        #expect(Set(queue.list(queue.keys.shard(0).done)) == Set([queue.job(1)!.id, queue.job(2)!.id]))
        #expect(queue.list(queue.keys.shard(0).committing("c1")).isEmpty)
        #expect(try database.level(1) == "bronze")
    }

    @Test func aCountDuringTheMoveStartsTheFollowUpAfterTheCommit() throws {
        let queue = MemoryQueue()
        let database = try Database(contents: [(1, "f1", "bronze")])
        defer { database.directory.remove() }
        queue.submit(cid: 1, count: 20000, filename: "f1", dbLevel: "bronze", target: "gold")
        guard case .delivery(let delivery) = try queue.next(NextRequest(worker: "w1", levels: ["gold"], rotation: 0, wait: .zero)) else {
            Issue.record("not claimed")
            return
        }
        #expect(queue.submit(cid: 1, count: 2000, filename: "f1", dbLevel: "bronze", target: "silver").outcome == .followUp)
        #expect(try queue.complete(delivery, .moved(Self.checksum, bytes: 10, method: .copied, foundIn: nil)) == .done)
        let committer = committer(queue, database)
        let done = start(committer)
        try waitUntil("the follow-up is queued") { queue.job(1)?.status == .queued && queue.job(1)?.target == "silver" }
        committer.stop()
        #expect(done.wait(for: .seconds(10)))
        #expect(try database.level(1) == "gold")
        #expect(queue.job(1)?.dbLevel == "gold")
    }
}
