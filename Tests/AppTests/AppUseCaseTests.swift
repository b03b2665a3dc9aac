import Logging
import RelocatorApp
import RelocatorCore
import RelocatorTesting
import Synchronization
import Testing

/// The use cases over the memory queue and store, without servers.
@Suite struct AppUseCaseTests {
    let queue = MemoryQueue()
    let store = MemoryStore()
    let app: App

    init() throws {
        app = App(queue: MemoryQueueGateway(queue), store: MemoryStoreGateway(store), levels: LevelCache(maxAge: .zero),
                  logger: Logger(label: "test.app"))
        _ = try store.put([Content(cid: 7, filename: "g.mp4", level: "bronze"), Content(cid: 8, filename: "../x", level: "bronze")])
    }

    struct NoDelivery: Error {}

    /// The job waiting for silver taken and ended as moved, as a worker does.
    func moveTheJobIntoSilver() throws {
        guard case .delivery(let delivery) = try queue.next(NextRequest(worker: "w1", levels: ["silver"], rotation: 0, wait: .zero)) else {
            throw NoDelivery()
        }
        let checksum = try Checksum(algorithm: .xxh128, hex: String(repeating: "ab", count: 16))
        _ = try queue.complete(delivery, .moved(checksum, bytes: 1, method: .linked, foundIn: nil))
    }

    @Test func aCountCreatesOneJobAndASecondCoalesces() async throws {
        let first = try await app.submit(cid: 7, count: 20000)
        #expect(first.target == "gold" && first.result.outcome == .created)
        let second = try await app.submit(cid: 7, count: 25000)
        #expect(second.result.outcome == .updated && queue.job(7)?.count == 25000)
    }

    @Test func whatCannotBeSubmittedIsRefusedWithACodeThatNamesIt() async throws {
        await #expect(throws: AppError.unknownContent(99)) { try await app.submit(cid: 99, count: 5) }
        await #expect { try await app.submit(cid: 8, count: 20000) } throws: { ($0 as? AppError)?.code == "invalid_filename" }
        await #expect { try await app.submit(cid: 7, count: -1) } throws: { ($0 as? AppError)?.kind == .badRequest }
        await #expect { try await app.hit(cid: 7, hits: 1) } throws: { ($0 as? AppError)?.kind == .unavailable }
        await #expect { try await app.setPaused(true, level: "platinum") } throws: {
            ($0 as? AppError)?.code == "unknown_level" && "\($0)" == "level 'platinum' is not in the level table (bronze, silver, gold)"
        }
        #expect(queue.job(7) == nil && queue.job(8) == nil)
    }

    @Test func aCountAboveEveryRangeRaisesTheTopLevelOnceAndSaysSo() async throws {
        let raise = try #require(try await app.raiseTopLevel(for: 150_000))
        #expect(raise.level == "gold" && raise.previous == 99_999)
        #expect(try await app.raiseTopLevel(for: 150_000) == nil)
        #expect(try store.levels().first { $0.name == "gold" }?.maxCounts == 150_000)
    }

    @Test func onlyADoneJobIsCommittedByTheOriginalsUpdateRoute() async throws {
        _ = try await app.submit(cid: 7, count: 2000)
        #expect(try await app.commitIfDone(cid: 7) == false)
        try moveTheJobIntoSilver()
        #expect(try await app.commitIfDone(cid: 7))
        #expect(try store.content(cid: 7)?.level == "silver")
        // Twice is the same answer and no second row.
        #expect(try await app.commitIfDone(cid: 7))
        #expect(try store.history(cid: 7).count == 1)
    }

    @Test func readinessNamesWhatIsOutOfReach() async throws {
        #expect(await app.readiness().isReady)
        store.setUnavailable(true)
        let readiness = await app.readiness()
        #expect(!readiness.isReady && readiness.redisProblem == nil && readiness.databaseProblem?.contains("unreachable") == true)
    }

    /// A cached read of the level whose next call spent its whole age on the way (the caller's clock
    /// stood still while the call travelled): the move committed meanwhile is still seen, because
    /// the read goes out as older by the transit allowance, and the count is placed from where the
    /// file is. (Without the allowance the queue put the read at the call's arrival, after the
    /// commit, and answered in_place from the stale level: the count was lost.)
    @Test func aMoveCommittedWhileACallTravelledIsSeenByACachedRead() async throws {
        let contents = ContentCache()
        let frozen = WallClock.milliseconds()
        let app = App(queue: MemoryQueueGateway(queue), store: MemoryStoreGateway(store), levels: LevelCache(maxAge: .zero),
                      contents: contents, logger: Logger(label: "test.app"), clock: { frozen })
        // A count for silver reads bronze (cached) and queues bronze → silver; the move commits.
        #expect(try await app.submit(cid: 7, count: 2000).result.outcome == .created)
        try moveTheJobIntoSilver()
        #expect(try await app.commitIfDone(cid: 7))
        #expect(contents.entry(7)?.content.level == "bronze")
        // The next call arrives 300 ms after it left, by the queue's clock.
        queue.advance(.milliseconds(300))
        let back = try await app.submit(cid: 7, count: 5)
        #expect(back.content.level == "silver" && back.result.job?.dbLevel == "silver" && back.result.job?.target == "bronze", "\(back)")
    }

    /// A cached read 20 s old whose host clock stepped back 10 s before the next call (NTP): the
    /// read's age is measured on the monotonic clock, so the move committed 15 s ago is still
    /// seen and the count is placed from where the file is. (On the wall clock the read looked
    /// 10 s old, placed after the commit, and the count was lost as in_place.)
    @Test func aWallClockSteppedBackDoesNotMakeACachedReadLookYounger() async throws {
        let contents = ContentCache()
        let stepped = Mutex(false)
        let wall = WallClock.milliseconds()
        let app = App(queue: MemoryQueueGateway(queue), store: MemoryStoreGateway(store), levels: LevelCache(maxAge: .zero),
                      contents: contents, logger: Logger(label: "test.app"),
                      clock: { stepped.withLock { $0 } ? wall + 10_000 : wall },
                      monotonic: { stepped.withLock { $0 } ? 21_000 : 1_000 })
        #expect(try await app.submit(cid: 7, count: 2000).result.outcome == .created)
        queue.advance(.seconds(5))
        try moveTheJobIntoSilver()
        #expect(try await app.commitIfDone(cid: 7))
        #expect(contents.entry(7)?.content.level == "bronze" && contents.entry(7)?.readBound == nil)
        // 20 s after the read, by every clock but the host's, which stepped back 10 s meanwhile.
        queue.advance(.seconds(15))
        stepped.withLock { $0 = true }
        let back = try await app.submit(cid: 7, count: 5)
        #expect(back.content.level == "silver" && back.result.job?.dbLevel == "silver" && back.result.job?.target == "bronze", "\(back)")
    }

    /// The same, with a call 5 s on its way (the process paused after it stamped the call, or Redis
    /// stalled): more than any allowance. The read goes out with the lower bound of the queue's
    /// clock learnt from an earlier answer, which no transit moves, and the commit is still seen.
    /// (With the read's age alone the queue placed the read 5 s late, after the commit, and the
    /// count was lost as in_place.)
    @Test func aMoveCommittedWhileACallTravelledLongerThanAnyAllowanceIsSeen() async throws {
        let contents = ContentCache()
        let frozen = WallClock.milliseconds()
        let app = App(queue: MemoryQueueGateway(queue), store: MemoryStoreGateway(store), levels: LevelCache(maxAge: .zero),
                      contents: contents, logger: Logger(label: "test.app"), clock: { frozen }, monotonic: { 1_000 })
        _ = try store.put([Content(cid: 10, filename: "h.mp4", level: "bronze")])
        // An answer teaches the application the queue's clock; then cid 7 is read (and cached).
        #expect(try await app.submit(cid: 10, count: 5).result.outcome == .inPlace)
        #expect(try await app.submit(cid: 7, count: 2000).result.outcome == .created)
        #expect(contents.entry(7)?.readBound != nil)
        try moveTheJobIntoSilver()
        #expect(try await app.commitIfDone(cid: 7))
        queue.advance(.seconds(5))
        let back = try await app.submit(cid: 7, count: 5)
        #expect(back.content.level == "silver" && back.result.job?.dbLevel == "silver" && back.result.job?.target == "bronze", "\(back)")
    }

    /// The bound is learnt per shard: the shards of a Redis Cluster live on nodes whose clocks may
    /// differ, so an answer from one shard bounds no read of a content on another.
    @Test func theQueuesClockIsLearntPerShard() async throws {
        let sharded = MemoryQueue(keys: try KeySchema(prefix: "{t}", shards: 2))
        let contents = ContentCache()
        let app = App(queue: MemoryQueueGateway(sharded), store: MemoryStoreGateway(store), levels: LevelCache(maxAge: .zero),
                      contents: contents, logger: Logger(label: "test.app"))
        _ = try store.put([Content(cid: 10, filename: "h.mp4", level: "bronze"), Content(cid: 12, filename: "i.mp4", level: "bronze")])
        #expect(KeySchema.shardIndex(of: 7, shards: 2) == 1 && KeySchema.shardIndex(of: 10, shards: 2) == 0)
        _ = try await app.submit(cid: 10, count: 5)
        _ = try await app.submit(cid: 7, count: 5)
        #expect(contents.entry(7)?.readBound == nil, "shard 1 had not answered yet")
        _ = try await app.submit(cid: 12, count: 5)
        #expect(contents.entry(12)?.readBound != nil, "shard 0 had")
    }

    /// A change of level outside a move (reconcile's fix) waits for a job in flight, and takes a
    /// generation after every move before it, so that the next move wins over it in turn.
    @Test func aLevelRecordedOutsideAMoveWaitsForAJobInFlightAndIsOrderedAmongTheMoves() async throws {
        _ = try await app.submit(cid: 7, count: 2000)
        #expect(try Commit.recordLevel(cid: 7, from: "bronze", to: "gold", by: "reconcile", store: store, queue: queue) == false)
        #expect(try store.content(cid: 7)?.level == "bronze")
        try moveTheJobIntoSilver()
        #expect(try await app.commitIfDone(cid: 7))
        #expect(try Commit.recordLevel(cid: 7, from: "silver", to: "gold", bytes: 9, by: "reconcile", store: store, queue: queue))
        #expect(try store.content(cid: 7)?.level == "gold" && store.history(cid: 7).last?.bytes == 9)
        // The next move, queued after the fix, has a newer generation: its commit wins.
        let next = try await app.submit(cid: 7, count: 5)
        #expect(next.content.level == "gold" && next.result.job?.dbLevel == "gold" && next.result.job?.target == "bronze", "\(next)")
        let fixGen = try #require(try store.history(cid: 7).last?.gen)
        #expect(try #require(next.result.job?.gen) > fixGen)
    }
}

