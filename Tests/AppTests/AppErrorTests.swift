import Logging
import RelocatorApp
import RelocatorCore
import RelocatorTesting
import Testing

/// What a use case refuses: a kind the API answers with, a code, and words naming what was wrong.
@Suite struct AppErrorTests {
    @Test func everyRefusalHasTheKindAndCodeTheAPIAnswersWith() {
        let cases: [(AppError, AppError.Kind, String)] = [
            (.badRequest("x"), .badRequest, "bad_request"), (.unknownContent(5), .notFound, "unknown_cid"), (.noJob(5), .notFound, "no_job"),
            (.unknownLevel("tape"), .notFound, "unknown_level"), (.invalidFilename("x"), .unprocessable, "invalid_filename"),
            (.noLevel("x"), .unprocessable, "no_level"), (.unavailable("x"), .unavailable, "unavailable"),
            (.conflict("job_in_flight", "x"), .conflict, "job_in_flight"),
        ]
        for (error, kind, code) in cases {
            #expect(error.kind == kind && error.code == code, "\(code)")
        }
        #expect("\(AppError.unknownContent(5))" == "no content with cid 5")
        #expect("\(AppError.noJob(6))" == "no job for cid 6")
    }

    @Test func aLevelNameFromOutsideIsCutInTheMessage() {
        let long = String(repeating: "x", count: 500)
        #expect(AppError.unknownLevel(long).message == "level '\(String(repeating: "x", count: 64))' is not in the level table")
    }
}

/// The use cases while a server is away, over the memory queue and store.
@Suite struct OutageUseCaseTests {
    let queue = MemoryQueue()
    let store = MemoryStore()
    let app: App

    init() throws {
        app = App(queue: MemoryQueueGateway(queue), store: MemoryStoreGateway(store), levels: LevelCache(maxAge: .zero), logger: Logger(label: "test.app"))
        _ = try store.put([Content(cid: 1, filename: "a.mp4", level: "bronze")])
    }

    @Test func readinessNamesTheQueueWhenItIsAway() async {
        queue.setUnavailable(true)
        let readiness = await app.readiness()
        #expect(!readiness.isReady && readiness.redisProblem != nil && readiness.databaseProblem == nil)
        queue.setUnavailable(false)
        #expect(await app.readiness().isReady)
    }

    @Test func aCountWhileTheQueueIsAwayFailsAndQueuesNothing() async throws {
        queue.setUnavailable(true)
        await #expect(throws: MemoryQueue.Unavailable.self) { try await app.submit(cid: 1, count: 20000) }
        queue.setUnavailable(false)
        #expect(queue.job(1) == nil)
        #expect(try await app.submit(cid: 1, count: 20000).result.outcome == .created)
    }

    @Test func aDeadJobIsNotCommittedByTheOriginalsUpdateRoute() async throws {
        _ = try await app.submit(cid: 1, count: 20000)
        guard case .delivery(let delivery) = try queue.next(NextRequest(worker: "w1", levels: ["gold"], rotation: 0, wait: .zero)) else {
            Issue.record("no delivery")
            return
        }
        _ = try queue.complete(delivery, .failed(.sourceMissing, message: "source_missing: gone", permanent: true, delay: .zero, maxAttempts: 5))
        #expect(try await app.commitIfDone(cid: 1) == false)
        #expect(try store.content(cid: 1)?.level == "bronze")
        #expect(try store.history(cid: 1).isEmpty)
    }
}
