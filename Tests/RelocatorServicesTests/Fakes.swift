import FileMover
import Foundation
import JobQueue
import Logging
import RelocatorCore
import RelocatorServices
import RelocatorTesting
import Synchronization
import Testing

/// A mover that touches no file: each call runs `behaviour` with the request and the hooks, so a
/// test decides what a move does (succeed, fail, wait for cancellation, report progress).
final class FakeMover: FileMoving, Sendable {
    let behaviour: @Sendable (MoveRequest, MoveHooks, Int) throws -> MoveResult
    private let calls = Mutex<[MoveRequest]>([])

    init(_ behaviour: @escaping @Sendable (MoveRequest, MoveHooks, Int) throws -> MoveResult = FakeMover.succeed) {
        self.behaviour = behaviour
    }

    func move(_ request: MoveRequest, hooks: MoveHooks) throws -> MoveResult {
        let attempt = calls.withLock { calls in
            calls.append(request)
            return calls.count
        }
        return try behaviour(request, hooks, attempt)
    }

    var requests: [MoveRequest] { calls.withLock { $0 } }

    /// A verified move of 1,000 bytes, with the hooks called as the real mover calls them.
    static let succeed: @Sendable (MoveRequest, MoveHooks, Int) throws -> MoveResult = { request, hooks, _ in
        let checksum = try Checksum(parsing: "xxh128:" + String(repeating: "ab", count: 16))
        try hooks.willPublish(checksum, 1000)
        hooks.didRemoveSource()
        return MoveResult(bytes: 1000, checksum: checksum, method: .copied, foundIn: request.source.level)
    }
}

/// A worker over a memory queue and a fake mover, run on a thread of its own.
final class WorkerHarness: @unchecked Sendable {
    let queue: MemoryQueue
    let mover: FakeMover
    let worker: Worker
    private let finished = Mutex<Bool>(false)

    init(levels: [String] = ["gold", "silver", "bronze"], concurrency: Int = 2, retry: RetryPolicy = RetryPolicy(base: .milliseconds(50), cap: .milliseconds(200), maxAttempts: 3),
         grace: Duration = .seconds(5), mover: FakeMover = FakeMover(), queue: MemoryQueue = MemoryQueue(), transfer: TransferAddress? = nil) {
        self.queue = queue
        self.mover = mover
        let directories = LevelDirectories([("gold", "/levels/gold"), ("silver", "/levels/silver"), ("bronze", "/levels/bronze")])
        var settings = Worker.Settings(id: "w1", levels: levels, directories: directories, concurrency: concurrency, retry: retry,
                                       heartbeatTTL: .milliseconds(300), gracePeriod: grace)
        settings.idleWait = .milliseconds(50)
        settings.progressInterval = .zero
        settings.transfer = transfer
        worker = Worker(settings: settings, driver: queue, mover: mover, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    func start() {
        BlockingExecutor.thread(named: "test-worker") {
            do {
                try self.worker.runBlocking()
            } catch {
                Issue.record("the worker failed: \(error)")
            }
            self.finished.withLock { $0 = true }
        }
    }

    /// Stops the worker and waits until it has given everything back.
    func stop() throws {
        worker.stop()
        try waitUntil("the worker stops", timeout: .seconds(20)) { finished.withLock { $0 } }
    }

    var isFinished: Bool { finished.withLock { $0 } }
}

/// Polls `condition` until it holds or `timeout` passes.
func waitUntil(_ what: String, timeout: Duration = .seconds(10), _ condition: () throws -> Bool) throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try condition() { return }
        usleep(5_000)
    }
    throw TimedOut(what: what)
}

struct TimedOut: Error, CustomStringConvertible {
    let what: String
    var description: String { "timed out waiting for \(what)" }
}
