import FileMover
import Foundation
import Logging
import RelocatorCore
import RelocatorServices
import RelocatorTesting
import Synchronization
import Testing
import TestSupport

/// The finisher, with the real mover on real directories and the memory queue: a slot hands a
/// move whose source is removed to the finisher and takes its next job; the move is acknowledged
/// only once its source directory has been fsynced.
@Suite struct FinisherTests {
    /// A worker of one slot over bronze and gold in one temporary directory, the real mover with
    /// `faults`, running on a thread of its own until `stop` (which also waits for it to end).
    struct Setup {
        let root: TemporaryDirectory
        let queue = MemoryQueue()
        let worker: Worker
        let done = StopSignal()
        var bronze: String { root.path + "/bronze" }
        var gold: String { root.path + "/gold" }

        init(files: [String], faults: MoveFaults) throws {
            root = try TemporaryDirectory("relocator-finisher")
            try FileManager.default.createDirectory(atPath: root.path + "/gold", withIntermediateDirectories: true)
            for name in files { try TestFiles.make(root.path + "/bronze/" + name, bytes: 10_000) }
            // As a worker leaves them after its first move: the fsyncs counted below are the moves' own.
            for level in ["gold", "bronze"] { try TestFiles.makeReservedDirectory(in: root.path + "/" + level) }
            var settings = Worker.Settings(id: "w1", levels: ["gold", "silver", "bronze"],
                                           directories: LevelDirectories([("gold", root.path + "/gold"), ("silver", root.path + "/silver"),
                                                                          ("bronze", root.path + "/bronze")]),
                                           concurrency: 1, retry: RetryPolicy(base: .milliseconds(20), cap: .milliseconds(50), maxAttempts: 5),
                                           heartbeatTTL: .milliseconds(300), gracePeriod: .seconds(5))
            settings.idleWait = .milliseconds(30)
            let worker = Worker(settings: settings, driver: queue, mover: FileMover(faults: faults),
                                logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
            self.worker = worker
            let done = self.done
            BlockingExecutor.thread(named: "test-worker") {
                do { try worker.runBlocking() } catch { Issue.record("\(error)") }
                done.raise()
            }
            for (index, name) in files.enumerated() {
                queue.submit(cid: Int64(index + 1), count: 20000, filename: name, dbLevel: "bronze", target: "gold")
            }
        }

        func stop() {
            worker.stop()
            #expect(done.wait(for: .seconds(10)), "the worker stops")
            root.remove()
        }
    }

    @Test func aMoveIsAcknowledgedOnlyAfterItsSourceDirectoryIsSyncedWhileTheSlotGoesOn() throws {
        // The finisher's first directory sync holds on until the test lets it go.
        let release = StopSignal()
        let synced = Mutex<[String]>([])
        let faults = MoveFaults(onStep: { step in
            if step == .sourceDirectorySynced { _ = release.wait(for: .seconds(20)) }
        }, onDirectorySynced: { path in synced.withLock { $0.append(path) } })
        let setup = try Setup(files: ["a.bin", "b.bin"], faults: faults)
        defer {
            release.raise()
            setup.stop()
        }
        // The one slot moved both files while the first move's directory sync is still held:
        // neither is acknowledged.
        try waitUntil("both files moved") {
            TestFiles.exists(setup.gold + "/a.bin") && TestFiles.exists(setup.gold + "/b.bin") && !TestFiles.exists(setup.bronze + "/a.bin")
                && !TestFiles.exists(setup.bronze + "/b.bin")
        }
        try waitUntil("the finisher's first sync") { synced.withLock { $0 }.contains { $0.hasSuffix("/bronze") } }
        #expect(setup.queue.job(1)?.status == .moving && setup.queue.job(2)?.status == .moving)
        release.raise()
        try waitUntil("both moves acknowledged") { setup.queue.job(1)?.status == .done && setup.queue.job(2)?.status == .done }
    }

    @Test func aMoveWhoseSourceDirectoryCannotBeSyncedIsRetriedAndTheNextDeliveryFinishesIt() throws {
        // The first directory sync fails, as a failing device's would.
        let failures = Atomic<Int>(0)
        let synced = Mutex<[String]>([])
        let faults = MoveFaults(onStep: { step in
            if step == .sourceDirectorySynced, failures.add(1, ordering: .relaxed).newValue == 1 {
                throw MoveError(.ioError, "the device failed the fsync")
            }
        }, onDirectorySynced: { path in synced.withLock { $0.append(path) } })
        let setup = try Setup(files: ["a.bin"], faults: faults)
        defer { setup.stop() }
        try waitUntil("the move acknowledged after a retry") { setup.queue.job(1)?.status == .done }
        let job = try #require(setup.queue.job(1))
        #expect(job.attempts == 1 && job.earlierError == "io_error: the device failed the fsync", "\(job)")
        #expect(TestFiles.exists(setup.gold + "/a.bin") && !TestFiles.exists(setup.bronze + "/a.bin"))
        // The next delivery found the file published and synced the source's directory before its ack.
        #expect(synced.withLock { $0 }.filter { $0.hasSuffix("/bronze") }.count == 2, "\(synced.withLock { $0 })")
    }
}
