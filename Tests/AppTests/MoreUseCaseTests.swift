import Logging
import RelocatorApp
import RelocatorCore
import RelocatorTesting
import Testing

/// More use cases over the memory queue and store, without servers: counts in bulk, hits, pauses,
/// dead letters, the statistics and a content's job.
@Suite struct MoreUseCaseTests {
    let queue = MemoryQueue()
    let store = MemoryStore()
    let app: App

    init() throws {
        app = App(queue: MemoryQueueGateway(queue), store: MemoryStoreGateway(store), levels: LevelCache(maxAge: .zero),
                  halfLife: .seconds(3600), logger: Logger(label: "test.app"))
        _ = try store.put([Content(cid: 1, filename: "a.mp4", level: "bronze"), Content(cid: 2, filename: "b.mp4", level: "bronze"),
                           Content(cid: 3, filename: "../escape", level: "bronze"), Content(cid: 4, filename: "d.mp4", level: "gold")])
    }

    @Test func countsInBulkAreCountedByOutcomeAndWhatCannotGoIsSkippedSayingWhy() async throws {
        let (outcomes, skipped) = try await app.submitMany([(1, 20000), (2, 500), (3, 20000), (99, 5), (4, 20000), (1, -1)])
        #expect(outcomes["created"] == 1 && outcomes["in_place"] == 2)
        #expect(skipped.count == 3)
        #expect(skipped.contains { $0.hasPrefix("cid 99: no such content") })
        #expect(skipped.contains { $0.hasPrefix("cid 3: unsafe filename") })
        #expect(skipped.contains { $0.hasPrefix("cid 1: count must be a whole number") })
        #expect(queue.job(1)?.target == "gold" && queue.job(2) == nil && queue.job(3) == nil)
    }

    @Test func countsInBulkAboveEveryRangeRaiseTheTopLevelOnce() async throws {
        let (outcomes, skipped) = try await app.submitMany([(1, 150_000), (2, 200_000)])
        #expect(skipped.isEmpty && outcomes["created"] == 2)
        #expect(try store.levels().first { $0.name == "gold" }?.maxCounts == 200_000)
    }

    @Test func hitsDriveTheCountOfAContentAndAnUnknownOneIsRefused() async throws {
        let (value, submitted) = try await app.hit(cid: 1, hits: 20000)
        #expect(value == 20000)
        #expect(submitted.target == "gold" && submitted.result.outcome == .created)
        await #expect(throws: AppError.unknownContent(42)) { try await app.hit(cid: 42, hits: 1) }
        await #expect { try await app.hit(cid: 1, hits: -1) } throws: { ($0 as? AppError)?.kind == .badRequest }
    }

    @Test func aPausedLevelIsPausedInTheQueueAndInTheStatistics() async throws {
        try await app.setPaused(true, level: "gold")
        #expect(queue.members(queue.keys.control.paused) == ["gold"])
        #expect(try await app.stats().levels.first { $0.name == "gold" }?.paused == true)
        try await app.setPaused(false, level: "gold")
        // The statistics cached before are dropped by the change.
        #expect(try await app.stats(maxAge: .seconds(60)).levels.first { $0.name == "gold" }?.paused == false)
    }

    @Test func aContentsJobIsReadWithItsNextAttemptAndAContentWithoutOneHasNone() async throws {
        _ = try await app.submit(cid: 1, count: 20000)
        let found = try #require(try await app.job(cid: 1))
        #expect(found.job.target == "gold" && found.job.status == .queued && found.nextRetryAt == nil)
        #expect(try await app.job(cid: 2) == nil)
        #expect(try await app.content(cid: 4).level == "gold")
        await #expect(throws: AppError.unknownContent(77)) { try await app.content(cid: 77) }
    }

    @Test func aPurgedDeadLetterIsForgottenAndItsFileStays() async throws {
        queue.submit(cid: 1, count: 20000, filename: "a.mp4", dbLevel: "bronze", target: "gold")
        guard case .delivery(let delivery) = try queue.next(NextRequest(worker: "w1", levels: ["gold"], rotation: 0, wait: .zero)) else {
            Issue.record("no delivery")
            return
        }
        _ = try queue.complete(delivery, .failed(.sourceMissing, message: "source_missing: gone", permanent: true, delay: .zero, maxAttempts: 5))
        let purged = try await app.dead(.purge, cids: nil, by: "test")
        #expect(purged.map(\.outcome) == [.purged])
        #expect(queue.job(1) == nil)
        #expect(try await app.deadLetters(cids: nil, action: "purged").isEmpty)
        #expect(try store.content(cid: 1)?.level == "bronze")
    }

    @Test func movesInFlightNameTheirWorker() async throws {
        _ = try await app.submit(cid: 1, count: 20000)
        guard case .delivery = try queue.next(NextRequest(worker: "w1", levels: ["gold"], rotation: 0, wait: .zero)) else {
            Issue.record("no delivery")
            return
        }
        let held = try await app.movesInFlight(workers: ["w1", "w2"])
        #expect(held.map(\.worker) == ["w1"] && held.first?.job?.cid == 1)
    }
}
