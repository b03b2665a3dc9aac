import FileMover
import Foundation
import JobQueue
import Logging
import RelocatorCore
import RelocatorServices
import RelocatorTesting
import Synchronization
import Testing
import TestSupport

/// The worker under level policies, on the memory queue: no server, no root.
@Suite struct WorkerPlacementTests {
    func snapshot(_ policies: [String: LevelPolicy]) -> PlacementSnapshot {
        PlacementSnapshot(levels: LevelRange.defaults, policies: policies, halfLife: nil)
    }

    func worker(_ queue: MemoryQueue, _ mover: FakeMover, directories: LevelDirectories, concurrency: Int = 1, id: String = "w1") -> Worker {
        var settings = Worker.Settings(id: id, levels: ["gold", "silver", "bronze"], directories: directories, concurrency: concurrency,
                                       retry: RetryPolicy(base: .milliseconds(20), cap: .milliseconds(50), maxAttempts: 5),
                                       heartbeatTTL: .milliseconds(300), gracePeriod: .seconds(5))
        settings.idleWait = .milliseconds(30)
        settings.deferRetry = .milliseconds(100)
        return Worker(settings: settings, driver: queue, mover: mover, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    func run(_ worker: Worker) -> StopSignal {
        let done = StopSignal()
        BlockingExecutor.thread(named: "test-worker") {
            do { try worker.runBlocking() } catch { Issue.record("\(error)") }
            done.raise()
        }
        return done
    }

    @Test func aCopyIntoALevelAboveItsHighWatermarkIsDeferredWithItsReason() throws {
        // Two filesystems: the temporary directory and /dev/shm (a tmpfs).
        let bronze = try TemporaryDirectory("relocator-bronze")
        let gold = try TemporaryDirectory("relocator-gold", under: "/dev/shm")
        defer { bronze.remove(); gold.remove() }
        try TestFiles.make(bronze.path + "/a.bin", bytes: 4096)
        let queue = MemoryQueue()
        // Any byte more puts gold above a 0 % watermark.
        try queue.publish(snapshot(["gold": LevelPolicy(highWater: 0, lowWater: 0)]))
        queue.submit(cid: 1, count: 20000, filename: "a.bin", dbLevel: "bronze", target: "gold")
        let mover = FakeMover()
        let w = worker(queue, mover, directories: LevelDirectories([("gold", gold.path), ("silver", bronze.path + "/s"), ("bronze", bronze.path)]))
        let done = run(w)
        try waitUntil("the job is deferred") { queue.job(1)?.status == .deferred }
        let job = try #require(queue.job(1))
        #expect(job.attempts == 0 && job.deferReason?.contains("high watermark 0 %") == true && mover.requests.isEmpty)
        w.stop()
        #expect(done.wait(for: .seconds(10)))
    }

    /// Two workers read the same free space at once; the room one of them reserved for its copy
    /// counts against the other, so the second copy waits instead of taking the level over its
    /// high watermark (each worker counting only its own copies would let both go).
    @Test func twoWorkersCannotBothTakeTheLastRoomBelowAHighWatermark() throws {
        let bronze = try TemporaryDirectory("relocator-bronze")
        let gold = try TmpfsMount(sizeKiB: 1024)
        defer { bronze.remove(); gold.remove() }
        // 512 KiB of room below 50 %: one file of 300,000 bytes fits, two do not.
        try TestFiles.make(bronze.path + "/a.bin", bytes: 300_000)
        try TestFiles.make(bronze.path + "/b.bin", bytes: 300_000)
        let queue = MemoryQueue()
        try queue.publish(snapshot(["gold": LevelPolicy(highWater: 50)]))
        queue.submit(cid: 1, count: 20000, filename: "a.bin", dbLevel: "bronze", target: "gold")
        queue.submit(cid: 2, count: 20000, filename: "b.bin", dbLevel: "bronze", target: "gold")
        // The copy holds on until the test lets it go; it writes nothing, so the disk's usage
        // does not tell the other worker about it.
        let release = StopSignal()
        let mover = FakeMover { request, hooks, attempt in
            _ = release.wait(for: .seconds(20))
            return try FakeMover.succeed(request, hooks, attempt)
        }
        let directories = LevelDirectories([("gold", gold.path), ("silver", bronze.path + "/s"), ("bronze", bronze.path)])
        let workers = [worker(queue, mover, directories: directories, id: "w1"), worker(queue, mover, directories: directories, id: "w2")]
        let done = workers.map(run)
        try waitUntil("one copy under way and the other deferred") {
            mover.requests.count == 1 && [1, 2].contains { queue.job($0)?.status == .deferred }
        }
        let waiting = try #require([Int64(1), 2].compactMap { queue.job($0) }.first { $0.status == .deferred })
        #expect(waiting.deferReason?.contains("high watermark 50 %") == true, "\(String(describing: waiting.deferReason))")
        release.raise()
        // Once the first copy ends its room is free again (this fake left the disk empty).
        try waitUntil("both moves", timeout: .seconds(20)) { [1, 2].allSatisfy { queue.job($0)?.status == .done } }
        #expect(mover.requests.count == 2)
        workers.forEach { $0.stop() }
        #expect(done.allSatisfy { $0.wait(for: .seconds(10)) })
    }

    /// A delivery that stopped mid-copy left its temporary file with its blocks reserved: they are
    /// in the disk's usage already, so the next delivery does not count them a second time (which
    /// would defer it for ever on a level with room for the file once but not twice).
    @Test func anEarlierDeliverysTemporaryFileIsNotCountedTwiceAgainstTheRoom() throws {
        let bronze = try TemporaryDirectory("relocator-bronze")
        let gold = try TmpfsMount(sizeKiB: 1024)
        defer { bronze.remove(); gold.remove() }
        try TestFiles.make(bronze.path + "/a.bin", bytes: 300_000)
        let queue = MemoryQueue()
        try queue.publish(snapshot(["gold": LevelPolicy(highWater: 50)]))
        queue.submit(cid: 1, count: 20000, filename: "a.bin", dbLevel: "bronze", target: "gold")
        let gen = try #require(queue.job(1)?.gen)
        // 512 KiB of room below 50 %, of which the leftover takes 300,000 bytes.
        try FileManager.default.createDirectory(atPath: gold.path + "/" + ReservedDirectory.temporaryPath, withIntermediateDirectories: true)
        try TestFiles.make(gold.path + "/" + PartName(cid: 1, gen: gen).relativePath, bytes: 300_000)
        let w = worker(queue, FakeMover(), directories: LevelDirectories([("gold", gold.path), ("silver", bronze.path + "/s"), ("bronze", bronze.path)]))
        let done = run(w)
        try waitUntil("the move") { queue.job(1)?.status == .done }
        #expect(queue.job(1)?.attempts == 0)
        w.stop()
        #expect(done.wait(for: .seconds(10)))
    }

    @Test func aBandwidthOfZeroIsNoLimit() throws {
        let (_, queue) = try copyIntoGold(bandwidth: 0) { hooks in
            for _ in 1...4 { hooks.willWrite(1 << 20) }
        }
        // No bucket was asked.
        #expect(queue.hash(queue.keys.control.bandwidth("gold")).isEmpty)
    }

    @Test func aLevelWithAMoveLimitNeverHasMoreMovesInFlight() throws {
        let queue = MemoryQueue()
        try queue.publish(snapshot(["gold": LevelPolicy(maxMoves: 1)]))
        let active = Mutex((now: 0, most: 0))
        let mover = FakeMover { request, hooks, attempt in
            active.withLock { $0.now += 1; $0.most = max($0.most, $0.now) }
            usleep(30_000)
            active.withLock { $0.now -= 1 }
            return try FakeMover.succeed(request, hooks, attempt)
        }
        for cid in Int64(1)...6 { queue.submit(cid: cid, count: 20000, filename: "f\(cid)", dbLevel: "bronze", target: "gold") }
        let w = worker(queue, mover, directories: LevelDirectories([("gold", "/levels/gold"), ("silver", "/levels/silver"), ("bronze", "/levels/bronze")]),
                       concurrency: 3)
        let done = run(w)
        try waitUntil("every move", timeout: .seconds(20)) { (1...6).allSatisfy { queue.job($0)?.status == .done } }
        #expect(active.withLock { $0.most } == 1)
        w.stop()
        #expect(done.wait(for: .seconds(10)))
        #expect(queue.permitsHeld("gold") == 0)
    }

    @Test func promotionsAreTakenBeforeDemotions() throws {
        let queue = MemoryQueue()
        try queue.publish(snapshot(["silver": LevelPolicy(hysteresis: 10)]))
        let order = Mutex<[String]>([])
        let mover = FakeMover { request, hooks, attempt in
            order.withLock { $0.append(request.target.level) }
            return try FakeMover.succeed(request, hooks, attempt)
        }
        for cid in Int64(1)...3 { queue.submit(cid: cid, count: 5, filename: "d\(cid)", dbLevel: "gold", target: "bronze") }
        for cid in Int64(4)...6 { queue.submit(cid: cid, count: 20000, filename: "p\(cid)", dbLevel: "bronze", target: "gold") }
        let w = worker(queue, mover, directories: LevelDirectories([("gold", "/levels/gold"), ("silver", "/levels/silver"), ("bronze", "/levels/bronze")]))
        let done = run(w)
        try waitUntil("every move", timeout: .seconds(20)) { (1...6).allSatisfy { queue.job($0)?.status == .done } }
        #expect(order.withLock { $0 } == ["gold", "gold", "gold", "bronze", "bronze", "bronze"])
        w.stop()
        #expect(done.wait(for: .seconds(10)))
    }

    /// One copy from bronze (the temporary directory's filesystem) into gold (/dev/shm, a tmpfs)
    /// with `bandwidth` as gold's limit, the fake mover writing as `write` says: how long the
    /// worker took from its start to the ack, and the queue.
    func copyIntoGold(bandwidth: Int64, _ write: @escaping @Sendable (MoveHooks) -> Void) throws -> (Duration, MemoryQueue) {
        let queue = MemoryQueue()
        let bronze = try TemporaryDirectory("relocator-bronze")
        let gold = try TemporaryDirectory("relocator-gold", under: "/dev/shm")
        defer { bronze.remove(); gold.remove() }
        try queue.publish(snapshot(["gold": LevelPolicy(bandwidth: bandwidth)]))
        let mover = FakeMover { request, hooks, attempt in
            write(hooks)
            return try FakeMover.succeed(request, hooks, attempt)
        }
        queue.submit(cid: 1, count: 20000, filename: "a", dbLevel: "bronze", target: "gold")
        let w = worker(queue, mover, directories: LevelDirectories([("gold", gold.path), ("silver", bronze.path + "/s"), ("bronze", bronze.path)]))
        let started = ContinuousClock.now
        let done = run(w)
        defer {
            w.stop()
            #expect(done.wait(for: .seconds(10)))
        }
        try waitUntil("the move", timeout: .seconds(20)) { queue.job(1)?.status == .done }
        return (ContinuousClock.now - started, queue)
    }

    @Test func copiesIntoALevelWithABandwidthLimitWaitForTheBucket() throws {
        // 3 MiB in 256 KiB chunks, each announced before it is written, as a copy does.
        let (took, _) = try copyIntoGold(bandwidth: 1 << 20) { hooks in
            for chunk in 1...12 {
                hooks.willWrite(1 << 18)
                hooks.progress(Int64(chunk) << 18, 3 << 20)
            }
        }
        // 3 MiB at 1 MiB/s from an empty bucket: at least 3 s.
        #expect(took >= .milliseconds(2950), "\(took)")
    }

    @Test func everyByteIsPaidForBeforeItIsWrittenUpToTheLastPieceOfAFile() throws {
        // 2,960 KiB in 1 MiB chunks: the last one is 912 KiB.
        let total: Int64 = (2 << 20) + (960 << 10)
        let (took, _) = try copyIntoGold(bandwidth: 4 << 20) { hooks in
            var done: Int64 = 0
            while done < total {
                let chunk = min(1 << 20, total - done)
                hooks.willWrite(chunk)
                done += chunk
                hooks.progress(done, total)
            }
        }
        // 2,960 KiB at 4 MiB/s from an empty bucket: at least 0.72 s; the last chunk unpaid would
        // take 0.5 s.
        #expect(took >= .milliseconds(700), "\(took)")
    }
}
