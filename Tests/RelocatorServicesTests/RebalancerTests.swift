import Foundation
import JobQueue
import Logging
import RedisClient
import RelocatorCore
import RelocatorServices
import RelocatorTesting
import Testing
import TestSupport

/// The rebalancer's lock on a real Redis (a key prefix of the test's own) and a SQLite file.
@Suite struct RebalancerTests {
    /// A committer stopped gracefully (a restart, a deploy) gives the rebalancing lock up as it
    /// ends: another committer's rebalancer takes it at once instead of waiting for it to lapse,
    /// which takes 30 s (its shortest lifetime) — meanwhile no level would be rebalanced.
    @Test func aStoppedRebalancerGivesItsLockUpAtOnce() throws {
        let database = try CommitterTests.Database(contents: [])
        defer { database.directory.remove() }
        let fixture = try RedisTestQueue("rb")
        defer { fixture.cleanUp() }
        let (queue, url, redis) = (fixture.queue, fixture.url, fixture.redis)
        var settings = Rebalancer.Settings(id: "c1")
        settings.interval = .milliseconds(100)
        let rebalancer = Rebalancer(settings: settings, driver: RedisJobQueueDriver(queue: queue, url: url), openDatabase: { try database.open() },
                                    logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        let done = StopSignal()
        BlockingExecutor.thread(named: "test-rebalancer") {
            rebalancer.runBlocking()
            done.raise()
        }
        // A published snapshot: a round ran, under the lock.
        try waitUntil("the first round") { try queue.placementSnapshot(on: redis) != nil }
        #expect(try !queue.holdRebalancer("other", ttl: .seconds(5), on: redis), "the running rebalancer holds the lock")
        rebalancer.stop()
        #expect(done.wait(for: .seconds(10)), "the rebalancer stopped")
        // Well under the lock's 30 s: without the release this times out.
        try waitUntil("another holder takes the lock", timeout: .seconds(5)) {
            try queue.holdRebalancer("other", ttl: .seconds(5), on: redis)
        }
    }
}
