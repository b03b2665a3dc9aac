import Logging
import RelocatorCore
@testable import RelocatorServices
import RelocatorTesting
import Testing

/// A job a slot put off because its content was held waits up to `HeldContent.recheck`: a worker
/// whose own deferrals are shorter must not take that wait for a step of Redis' clock and promote
/// the job at once (every maintenance tick would then take, put off and promote it again).
@Suite struct HeldContentHorizonTests {
    @Test func aHeldContentsJobIsNotPromotedBeforeItsRecheck() throws {
        let queue = MemoryQueue()
        var settings = Worker.Settings(id: "w1", levels: ["gold", "bronze"], directories: LevelDirectories([("gold", "/levels/gold"), ("bronze", "/levels/bronze")]),
                                       concurrency: 1, retry: RetryPolicy(base: .milliseconds(50), cap: .milliseconds(200), maxAttempts: 3),
                                       heartbeatTTL: .milliseconds(300), gracePeriod: .seconds(5))
        settings.deferRetry = .milliseconds(300)
        let worker = Worker(settings: settings, driver: queue, mover: FakeMover(), logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        let horizons = worker.horizons(PlacementSnapshot(levels: LevelRange.defaults, policies: [:], halfLife: nil))

        #expect(try queue.session().control(.lease(cid: 5, token: "rename-1", ttl: .seconds(60))) == .flag(true))
        try queue.submit(cid: 5, count: 20000, filename: "f5", dbLevel: "bronze", target: "gold")
        #expect(try queue.session().next(NextRequest(worker: "w1", levels: ["gold"], rotation: 0, wait: .zero)) == .idle)
        #expect(queue.job(5)?.status == .deferred)
        let maintain = MaintenanceRequest(beat: Heartbeat(id: "w1", kind: .worker), ttl: .seconds(60), promoteDue: true, horizons: horizons)
        #expect(try queue.maintain(maintain).promoted == 0, "not due before its recheck")
        queue.advance(HeldContent.recheck)
        #expect(try queue.maintain(maintain).promoted == 1)
        #expect(queue.job(5)?.status == .queued)
    }
}
