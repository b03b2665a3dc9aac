import FileMover
import Foundation
import Logging
import RelocatorCore
import RelocatorServices
import Synchronization
import Testing
import TestSupport

/// The finisher, with the real mover on real directories and the memory queue: a slot hands a
/// move whose source is removed to the finisher and takes its next job; the move is acknowledged
/// only once its source directory has been fsynced.
@Suite struct FinisherTests {
    @Test func aMoveIsAcknowledgedOnlyAfterItsSourceDirectoryIsSyncedWhileTheSlotGoesOn() throws {
        let root = try TemporaryDirectory("relocator-finisher")
        defer { root.remove() }
        let (bronze, gold) = (root.path + "/bronze", root.path + "/gold")
        try FileManager.default.createDirectory(atPath: gold, withIntermediateDirectories: true)
        try TestFiles.make(bronze + "/a.bin", bytes: 10_000)
        try TestFiles.make(bronze + "/b.bin", bytes: 10_000)
        // The finisher's first directory sync holds on until the test lets it go.
        let release = StopSignal()
        let synced = Mutex<[String]>([])
        let faults = MoveFaults(onStep: { step in
            if step == .sourceDirectorySynced { _ = release.wait(for: .seconds(20)) }
        }, onDirectorySynced: { path in synced.withLock { $0.append(path) } })
        let queue = MemoryQueue()
        var settings = Worker.Settings(id: "w1", levels: ["gold", "silver", "bronze"],
                                       directories: LevelDirectories([("gold", gold), ("silver", root.path + "/silver"), ("bronze", bronze)]),
                                       concurrency: 1, heartbeatTTL: .milliseconds(300), gracePeriod: .seconds(5))
        settings.idleWait = .milliseconds(30)
        let worker = Worker(settings: settings, driver: queue, mover: FileMover(faults: faults),
                            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        let done = StopSignal()
        BlockingExecutor.thread(named: "test-worker") {
            do { try worker.runBlocking() } catch { Issue.record("\(error)") }
            done.raise()
        }
        defer {
            release.raise()
            worker.stop()
            _ = done.wait(for: .seconds(10))
        }
        queue.submit(cid: 1, count: 20000, filename: "a.bin", dbLevel: "bronze", target: "gold")
        queue.submit(cid: 2, count: 20000, filename: "b.bin", dbLevel: "bronze", target: "gold")
        // The one slot moved both files while the first move's directory sync is still held:
        // neither is acknowledged.
        try waitUntil("both files moved") {
            TestFiles.exists(gold + "/a.bin") && TestFiles.exists(gold + "/b.bin") && !TestFiles.exists(bronze + "/a.bin")
                && !TestFiles.exists(bronze + "/b.bin")
        }
        try waitUntil("the finisher's first sync") { synced.withLock { $0 }.contains { $0.hasSuffix("/bronze") } }
        #expect(queue.job(1)?.status == .moving && queue.job(2)?.status == .moving)
        release.raise()
        try waitUntil("both moves acknowledged") { queue.job(1)?.status == .done && queue.job(2)?.status == .done }
    }

    @Test func aMoveWhoseSourceDirectoryCannotBeSyncedIsRetriedAndTheNextDeliveryFinishesIt() throws {
        let root = try TemporaryDirectory("relocator-finisher")
        defer { root.remove() }
        let (bronze, gold) = (root.path + "/bronze", root.path + "/gold")
        try FileManager.default.createDirectory(atPath: gold, withIntermediateDirectories: true)
        try TestFiles.make(bronze + "/a.bin", bytes: 10_000)
        // The first directory sync fails, as a failing device's would.
        let failures = Atomic<Int>(0)
        let synced = Mutex<[String]>([])
        let faults = MoveFaults(onStep: { step in
            if step == .sourceDirectorySynced, failures.add(1, ordering: .relaxed).newValue == 1 {
                throw MoveError(.ioError, "the device failed the fsync")
            }
        }, onDirectorySynced: { path in synced.withLock { $0.append(path) } })
        let queue = MemoryQueue()
        var settings = Worker.Settings(id: "w1", levels: ["gold", "silver", "bronze"],
                                       directories: LevelDirectories([("gold", gold), ("silver", root.path + "/silver"), ("bronze", bronze)]),
                                       concurrency: 1, retry: RetryPolicy(base: .milliseconds(20), cap: .milliseconds(50), maxAttempts: 5),
                                       heartbeatTTL: .milliseconds(300), gracePeriod: .seconds(5))
        settings.idleWait = .milliseconds(30)
        let worker = Worker(settings: settings, driver: queue, mover: FileMover(faults: faults),
                            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        let done = StopSignal()
        BlockingExecutor.thread(named: "test-worker") {
            do { try worker.runBlocking() } catch { Issue.record("\(error)") }
            done.raise()
        }
        defer {
            worker.stop()
            _ = done.wait(for: .seconds(10))
        }
        queue.submit(cid: 1, count: 20000, filename: "a.bin", dbLevel: "bronze", target: "gold")
        try waitUntil("the move acknowledged after a retry") { queue.job(1)?.status == .done }
        let job = try #require(queue.job(1))
        #expect(job.attempts == 1 && job.earlierError == "io_error: the device failed the fsync", "\(job)")
        #expect(TestFiles.exists(gold + "/a.bin") && !TestFiles.exists(bronze + "/a.bin"))
        // The next delivery found the file published and synced the source's directory before its ack.
        #expect(synced.withLock { $0 }.filter { $0.hasSuffix("/bronze") }.count == 2, "\(synced.withLock { $0 })")
    }
}
