import Logging
import RelocatorApp
import RelocatorCore
import RelocatorTesting
import Synchronization
import Testing

/// A count that read a content's name just before a rename wrote the new one, and made its job
/// while the rename held the content: the job takes the new name, so no move looks for the file
/// by the old one (which may by then be another content's).
@Suite struct RenameWindowTests {
    /// An application over memory stores holding `rows`, its level table and policies read once
    /// (so that the store's next calls are the rename's), with gateways that can act before a
    /// call or fail one.
    struct World {
        let store: MemoryStore
        let queue: MemoryQueue
        let storeGateway: BeforeCallStoreGateway
        let queueGateway: BeforeCallQueueGateway
        let app: App

        init(_ rows: [Content]) async throws {
            store = MemoryStore()
            _ = try store.put(rows)
            queue = MemoryQueue()
            storeGateway = BeforeCallStoreGateway(MemoryStoreGateway(store))
            queueGateway = BeforeCallQueueGateway(MemoryQueueGateway(queue))
            app = App(queue: queueGateway, store: storeGateway, levels: LevelCache(maxAge: .seconds(86400)),
                      contents: ContentCache(maxAge: .seconds(86400)), logger: Logger(label: "test.app"))
            _ = try await app.levelTable()
            _ = try await app.placement()
        }

        /// Before a rename's write (its third call to the store: it reads the content, then the
        /// rows it is given), a count of `cid` reads the content — the old name — and makes its
        /// job while the content is held. Its outcome, once the rename is done.
        func countDuringTheWrite(of cid: Int64) -> Recorded<SubmitOutcome> {
            let submitted = Recorded<SubmitOutcome>()
            storeGateway.beforeCall(3) { [app] in submitted.record(try? await app.submit(cid: cid, count: 20000).result.outcome) }
            return submitted
        }

        /// `cid`'s job is not taken (by its old name): the slot that finds its content held puts it off.
        func expectHeldNotTaken(_ cid: Int64, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let next = try queue.session().next(NextRequest(worker: "w1", levels: ["gold"], rotation: 0, wait: .zero))
            if case .delivery(let delivery) = next {
                Issue.record("the job was taken by its old name \(delivery.job.filename)", sourceLocation: sourceLocation)
            }
            #expect(queue.job(cid)?.status == .deferred && queue.job(cid)?.deferReason == HeldContent.deferReason, sourceLocation: sourceLocation)
        }
    }

    @Test func aJobMadeWhileARenameHoldsTheContentTakesTheNewName() async throws {
        let world = try await World([Content(cid: 30, filename: "a.mp4", level: "bronze")])
        let submitted = world.countDuringTheWrite(of: 30)
        #expect(try await world.app.putContent(cid: 30, filename: "b.mp4", level: "bronze") == .changed(from: Content(cid: 30, filename: "a.mp4", level: "bronze")))
        #expect(submitted.value == .created)
        #expect(try world.store.content(cid: 30)?.filename == "b.mp4")
        #expect(world.queue.job(30)?.filename == "b.mp4")
        #expect(world.queue.job(30)?.status == .queued)
    }
}

/// A count, or many (`relocator enqueue --file`), that read a content's old name and paused before
/// its submission while a rename was made whole (written, told to the queue, released): the
/// submission of that read is called stale, the content read again, and the job made by the new
/// name.
extension RenameWindowTests {
    @Test func aCountThatReadTheOldNameBeforeAWholeRenameMakesItsJobByTheNewName() async throws {
        let world = try await World([Content(cid: 31, filename: "a.mp4", level: "bronze")])
        let renamed = Mutex<App.ContentChange?>(nil)
        // The count's first call to the queue is its submission, after its read of the row.
        world.queueGateway.beforeCall(1) { [app = world.app] in
            let change = try? await app.putContent(cid: 31, filename: "b.mp4", level: "bronze")
            renamed.withLock { $0 = change }
        }
        let submitted = try await world.app.submit(cid: 31, count: 20000)
        #expect(renamed.withLock { $0 } == .changed(from: Content(cid: 31, filename: "a.mp4", level: "bronze")))
        #expect(try world.store.content(cid: 31)?.filename == "b.mp4")
        #expect(submitted.result.outcome == .created && submitted.content.filename == "b.mp4")
        #expect(world.queue.job(31)?.filename == "b.mp4")
    }

    /// A rename whose write succeeded but whose new names the queue was not told (Redis failed
    /// right then) leaves its contents held until their leases end: a job made by the old name
    /// is not taken meanwhile.
    @Test func aRenameWhoseNewNamesTheQueueWasNotToldKeepsItsContentsHeld() async throws {
        let world = try await World([Content(cid: 34, filename: "a.mp4", level: "bronze")])
        let submitted = world.countDuringTheWrite(of: 34)
        // The rename's third call to the queue (after its lease and the count's submission), the
        // new name, fails.
        world.queueGateway.failCall(3)
        await #expect(throws: BeforeCallQueueGateway.QueueDown.self) { _ = try await world.app.putContent(cid: 34, filename: "b.mp4", level: "bronze") }
        #expect(submitted.value == .created)
        #expect(try world.store.content(cid: 34)?.filename == "b.mp4")
        #expect(world.queue.job(34)?.filename == "a.mp4")
        try world.expectHeldNotTaken(34)
    }

    /// A rename whose write was answered with a lost session (a COMMIT past the answer's limit,
    /// which may land then or later): the contents stay held as if the queue had not been told —
    /// a job a count made by the old name meanwhile is not taken.
    @Test func aRenameWhoseCommitsAnswerWasLostKeepsItsContentsHeld() async throws {
        let world = try await World([Content(cid: 35, filename: "a.mp4", level: "bronze")])
        let submitted = world.countDuringTheWrite(of: 35)
        // The third call is the write: it lands, then its session is lost.
        world.storeGateway.loseAfterCall(3)
        await #expect(throws: BeforeCallStoreGateway.LostWhileCommitting.self) {
            _ = try await world.app.putContent(cid: 35, filename: "b.mp4", level: "bronze")
        }
        #expect(submitted.value == .created)
        #expect(try world.store.content(cid: 35)?.filename == "b.mp4")
        try world.expectHeldNotTaken(35)
    }

    @Test func manyCountsThatReadTheOldNameBeforeAWholeRenameMakeTheirJobsByTheNewName() async throws {
        let world = try await World([Content(cid: 32, filename: "a.mp4", level: "bronze"), Content(cid: 33, filename: "c.mp4", level: "bronze")])
        let (queue, app) = (world.queue, world.app)
        world.queueGateway.beforeCall(1) { _ = try? await app.putContent(cid: 32, filename: "b.mp4", level: "bronze") }
        let result = try await app.submitMany([(32, 20000), (33, 20000)])
        #expect(result.outcomes == ["created": 2] && result.skipped.isEmpty)
        #expect(queue.job(32)?.filename == "b.mp4")
        #expect(queue.job(33)?.filename == "c.mp4")
    }
}

extension RenameWindowTests {
    /// A rename among many rows holds its contents until it is done, past a minute: a count made
    /// meanwhile makes a job that no worker takes before the new name is written.
    @Test func aRenameAmongManyRowsHoldsItsContentsPastAMinute() async throws {
        let rows = (1...5000).map { Content(cid: Int64($0), filename: "f\($0).mp4", level: "bronze") }
        let world = try await World(rows)
        let (queue, gateway, app) = (world.queue, world.storeGateway, world.app)
        let submitted = Mutex<SubmitOutcome?>(nil)
        let takenMeanwhile = Mutex<Bool?>(nil)
        // Before the write (the rename's second call): 63 s pass, a count makes cid 1's job, and
        // a worker looks for work.
        gateway.beforeCall(2) {
            queue.advance(.seconds(63))
            let outcome = try? await app.submit(cid: 1, count: 20000).result.outcome
            submitted.withLock { $0 = outcome }
            let next = try? queue.session().next(NextRequest(worker: "w1", levels: ["gold"], rotation: 0, wait: .zero))
            takenMeanwhile.withLock {
                if case .delivery = next { $0 = true } else { $0 = next == nil ? nil : false }
            }
        }
        var renamed = rows
        renamed[0].filename = "g1.mp4"

        #expect(try await app.putContents(renamed, by: "test") == 5000)
        #expect(submitted.withLock { $0 } == .created)
        #expect(takenMeanwhile.withLock { $0 } == false)
        // The slot that found it held put it off (not back onto its queue): it is promoted when due.
        #expect(queue.job(1)?.status == .deferred && queue.job(1)?.deferReason == HeldContent.deferReason)
        queue.advance(HeldContent.recheck + .seconds(1))
        _ = try queue.maintain(MaintenanceRequest(beat: Heartbeat(id: "w1", kind: .worker), ttl: .seconds(60), promoteDue: true))
        guard case .delivery(let delivery) = try queue.session().next(NextRequest(worker: "w1", levels: ["gold"], rotation: 0, wait: .zero)) else {
            Issue.record("the job is taken once the rename is done")
            return
        }
        #expect(delivery.job.cid == 1 && delivery.job.filename == "g1.mp4")
    }
}

/// A value an action records for the test to read once it has run.
final class Recorded<Value: Sendable>: Sendable {
    private let state = Mutex<Value?>(nil)

    func record(_ value: Value?) { state.withLock { $0 = value } }
    var value: Value? { state.withLock { $0 } }
}

/// A store gateway that runs an action before its n-th call from now (calls the action makes
/// itself are counted, and pass).
final class BeforeCallStoreGateway: StoreGateway {
    private let base: MemoryStoreGateway
    private let state = Mutex<(calls: Int, at: Int, action: (@Sendable () async -> Void)?, lostAfter: Int?)>((0, 0, nil, nil))

    init(_ base: MemoryStoreGateway) { self.base = base }

    func beforeCall(_ n: Int, _ action: @escaping @Sendable () async -> Void) {
        state.withLock { $0 = ($0.calls, $0.calls + n, action, $0.lostAfter) }
    }

    /// A session lost (given up) while it committed: transient, as the store's would be.
    struct LostWhileCommitting: TransientFailure {
        var isTransient: Bool { true }
    }

    /// The n-th call from now does its work, then fails as a session lost while committing would.
    func loseAfterCall(_ n: Int) {
        state.withLock { $0.lostAfter = $0.calls + n }
    }

    func withStore<T: Sendable>(_ body: @escaping @Sendable (any ContentStoring) throws -> T) async throws -> T {
        let (action, lost) = state.withLock { state -> ((@Sendable () async -> Void)?, Bool) in
            state.calls += 1
            let lost = state.calls == state.lostAfter
            guard state.calls == state.at else { return (nil, lost) }
            defer { state.action = nil }
            return (state.action, lost)
        }
        await action?()
        let result = try await base.withStore(body)
        if lost { throw LostWhileCommitting() }
        return result
    }
    func open() throws -> any ContentStoring { try base.open() }
    var location: String { base.location }
    func close() {}
}

/// A queue gateway that runs an action before its n-th call (a session or a submission) from now
/// (calls the action makes itself are counted, and pass).
final class BeforeCallQueueGateway: QueueGateway {
    private let base: MemoryQueueGateway
    private let state = Mutex<(calls: Int, at: Int, action: (@Sendable () async -> Void)?, failing: Int?)>((0, 0, nil, nil))

    init(_ base: MemoryQueueGateway) { self.base = base }

    func beforeCall(_ n: Int, _ action: @escaping @Sendable () async -> Void) {
        state.withLock { $0 = ($0.calls, $0.calls + n, action, $0.failing) }
    }

    struct QueueDown: Error {}

    /// The n-th call from now fails (`QueueDown`), as an unreachable queue's would.
    func failCall(_ n: Int) {
        state.withLock { $0.failing = $0.calls + n }
    }

    private func due() async throws {
        let (action, fails) = state.withLock { state -> ((@Sendable () async -> Void)?, Bool) in
            state.calls += 1
            let fails = state.calls == state.failing
            guard state.calls == state.at else { return (nil, fails) }
            defer { state.action = nil }
            return (state.action, fails)
        }
        await action?()
        if fails { throw QueueDown() }
    }

    func withSession<T: Sendable>(replicated: Bool, _ body: @escaping @Sendable (any JobQueueSession) throws -> T) async throws -> T {
        try await due()
        return try await base.withSession(replicated: replicated, body)
    }
    func submit(_ request: SubmitRequest) async throws -> SubmitResult {
        try await due()
        return try await base.submit(request)
    }
    func identity() async -> String? { await base.identity() }
    func problem() async -> String? { await base.problem() }
    var address: String { base.address }
    var shardCount: Int { base.shardCount }
    func close() {}
}
