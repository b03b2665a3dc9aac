import FileMover
import Foundation
import JobQueue
import Logging
import RedisClient
import RelocatorCore
import ServiceLifecycle
import Synchronization

/// Moves files: `concurrency` slots, each on a thread of its own with its own Redis connection, take
/// jobs of `levels` (BRPOPLPUSH into `processing:<id>`), move them safely, and ack or fail them. A
/// maintenance thread keeps the heartbeat, promotes due retries and reaps dead workers.
///
/// Stopping (SIGTERM): no new job is taken; moves in flight get `gracePeriod` to finish, then are
/// cancelled; whatever is still held goes back to its queue without counting an attempt.
final class Worker: Service, @unchecked Sendable {
    struct Settings {
        var id: String
        var levels: [String]
        var directories: LevelDirectories
        var concurrency: Int
        var redis: RedisURL
        var keys: RedisKeys
        var retry: RetryPolicy
        var heartbeatTTL: Duration
        var gracePeriod: Duration
        var mover: FileMover
        /// Fault injection for tests: end the process between a verified move and its ack.
        var crashBeforeAck = false
        /// Benchmarks only: acknowledge without touching any file.
        var noopMove = false
    }

    let settings: Settings
    let queue: JobQueue
    let logger: Logger
    private let stopping = Atomic<Bool>(false)
    private let cancelMoves = Atomic<Bool>(false)
    private let activeSlots = Atomic<Int>(0)

    init(settings: Settings, logger: Logger) {
        self.settings = settings
        self.queue = JobQueue(keys: settings.keys)
        var logger = logger
        logger[metadataKey: "worker"] = "\(settings.id)"
        self.logger = logger
    }

    func run() async throws {
        try await runOnThread("worker-main", onShutdown: { self.stop() }) { try self.runBlocking() }
    }

    func stop() {
        guard !stopping.exchange(true, ordering: .sequentiallyConsistent) else { return }
        logger.info("stopping: no new jobs; moves in flight have \(settings.gracePeriod) to finish")
        let grace = settings.gracePeriod
        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(Int(grace.milliseconds))) {
            if self.activeSlots.load(ordering: .relaxed) > 0 {
                self.logger.warning("grace period over: cancelling moves in flight; their jobs go back to the queue")
            }
            self.cancelMoves.store(true, ordering: .sequentiallyConsistent)
        }
    }

    private var isStopping: Bool { stopping.load(ordering: .relaxed) }

    func runBlocking() throws {
        let control = RedisConnection(url: settings.redis)
        try warnAboutEviction(control)
        // Jobs held by an earlier process with this id go back first.
        let recovered = try queue.release(worker: settings.id, on: control)
        if recovered > 0 { logger.info("gave back \(recovered) jobs held by an earlier run of this worker") }
        try queue.heartbeat(worker: settings.id, ttl: settings.heartbeatTTL, on: control)
        logger.info("started", metadata: ["levels": "\(settings.levels.joined(separator: ","))", "concurrency": "\(settings.concurrency)"])

        let group = DispatchGroup()
        for slot in 0..<settings.concurrency {
            group.enter()
            activeSlots.add(1, ordering: .relaxed)
            let thread = Thread {
                self.slotLoop(slot)
                self.activeSlots.subtract(1, ordering: .relaxed)
                group.leave()
            }
            thread.name = "worker-slot-\(slot)"
            thread.start()
        }
        maintenanceLoop(control, until: group)

        // Hand back what is still held (cancelled moves, ids taken as the stop came), then leave.
        try retrying("give back jobs", attempts: 5) {
            let given = try self.queue.release(worker: self.settings.id, on: control)
            if given > 0 { self.logger.info("gave back \(given) jobs") }
            try self.queue.unregister(worker: self.settings.id, on: control)
        }
        logger.info("stopped")
    }

    // MARK: - Maintenance

    private func maintenanceLoop(_ redis: RedisConnection, until group: DispatchGroup) {
        let interval = max(100, Int(settings.heartbeatTTL.milliseconds / 3))
        while group.wait(timeout: .now() + .milliseconds(interval)) == .timedOut {
            do {
                try queue.heartbeat(worker: settings.id, ttl: settings.heartbeatTTL, on: redis)
                let promoted = try queue.promoteDueRetries(on: redis)
                if promoted > 0 { logger.debug("promoted \(promoted) due retries") }
                let reaped = try queue.reapDeadWorkers(grace: settings.heartbeatTTL, on: redis)
                if reaped > 0 { logger.warning("gave back \(reaped) jobs of workers whose heartbeat stopped") }
                try removeStaleParts(redis)
            } catch {
                logger.warning("maintenance failed: \(error)")
            }
        }
    }

    /// Removes temporary files of jobs that were dropped or purged mid-move, when they lie in this
    /// worker's level directories (another worker may see other disks).
    private func removeStaleParts(_ redis: RedisConnection) throws {
        for path in try queue.staleParts(on: redis) {
            guard let part = validPart(path, cid: nil) else {
                if !isInsideLevels(path) { continue }
                logger.warning("ignoring a stale temporary file entry that is not one of ours: \(path)")
                try queue.forgetStalePart(path, on: redis)
                continue
            }
            if unlink(part) == 0 || errno == ENOENT {
                logger.info("removed the temporary file of a job that is gone: \(part)")
                try queue.forgetStalePart(path, on: redis)
            }
        }
    }

    private func warnAboutEviction(_ redis: RedisConnection) throws {
        do {
            let reply = try redis.send("CONFIG", "GET", "maxmemory-policy")
            if let policy = reply.array?.last?.string, policy != "noeviction" {
                logger.warning("Redis maxmemory-policy is '\(policy)': Redis may evict jobs under memory pressure; set it to noeviction")
            }
        } catch let error as RedisError where error.code == .server {
            logger.notice("cannot read Redis maxmemory-policy (\(error.message)); make sure it is noeviction")
        }
    }

    // MARK: - Slots

    private func slotLoop(_ slot: Int) {
        let redis = RedisConnection(url: settings.redis)
        defer { redis.close() }
        var rotation = slot
        var failures = 0
        while !isStopping {
            do {
                let levels = settings.levels
                let order = Array(levels[(rotation % levels.count)...] + levels[..<(rotation % levels.count)])
                var job = try queue.fetch(worker: settings.id, levels: order, on: redis)
                if job == nil {
                    rotation += 1
                    let taken = try queue.waitForWork(worker: settings.id, level: order[0], timeout: .seconds(1), on: redis)
                    if let taken, !isStopping { job = try queue.fetch(worker: settings.id, levels: [], taken: taken, on: redis) }
                }
                failures = 0
                if let job { process(job, on: redis) }
            } catch {
                failures += 1
                logger.warning("cannot take work: \(error)")
                pause(.milliseconds(min(5000, 200 << min(failures, 5))))
            }
        }
    }

    /// Sleeps in short steps, waking early when stopping.
    private func pause(_ duration: Duration) {
        let deadline = ContinuousClock.now + duration
        while ContinuousClock.now < deadline && !isStopping { usleep(50_000) }
    }

    private func process(_ job: Job, on redis: RedisConnection) {
        var log = logger
        log[metadataKey: "job.cid"] = "\(job.cid)"
        log[metadataKey: "job.id"] = "\(job.id)"
        let filename: Filename
        do {
            filename = try Filename(job.filename)
        } catch {
            return fail(job, MoveError(.invalidFilename, "\(job.filename.debugDescription.prefix(200)): \(error)"), on: redis, log)
        }
        guard let source = settings.directories.directory(of: job.dbLevel),
              let target = settings.directories.directory(of: job.target)
        else {
            let unknown = settings.directories.directory(of: job.dbLevel) == nil ? job.dbLevel : job.target
            return fail(job, MoveError(.invalidFilename, "level '\(unknown)' has no directory in RELOCATOR_LEVELS on this worker"),
                        permanent: true, on: redis, log)
        }
        let others = settings.directories.names.filter { $0 != job.dbLevel && $0 != job.target }
            .compactMap(settings.directories.directory(of:))
        if settings.noopMove {
            retrying("ack", log) { _ = try self.queue.ack(job, worker: self.settings.id, checksum: "noop", bytes: 0, on: redis) }
            return
        }
        let request = MoveRequest(filename: filename, sourceDirectory: source, targetDirectory: target, otherDirectories: others,
                                  cid: job.cid, gen: job.gen, expectedChecksum: job.checksum, stalePart: ownPart(job))
        let jobKey = queue.keys.job(job.cid)
        let result: MoveResult
        do {
            result = try settings.mover.move(request, beforeCopy: { part in
                // Recorded before the file is created, so that whichever delivery comes next removes it.
                try redis.send("HSET", jobKey, "part", part)
            }, beforePublish: { checksum, bytes in
                // Recorded before the file appears, so a later delivery can verify what it finds.
                try redis.send("HSET", jobKey, "checksum", checksum, "bytes", bytes)
            }, shouldStop: { self.cancelMoves.load(ordering: .relaxed) })
        } catch let error as MoveError where error.kind == .cancelled {
            log.info("move cancelled by shutdown; the job goes back to its queue")
            return
        } catch let error as MoveError {
            return fail(job, error, on: redis, log)
        } catch {
            // The temporary file or the checksum could not be recorded (Redis): nothing was
            // published yet; try again later.
            return fail(job, MoveError(.io, "cannot record the move's progress in Redis: \(error)"), on: redis, log)
        }
        if settings.crashBeforeAck {
            log.critical("fault injection: crashing between the move and the ack")
            kill(getpid(), SIGKILL)
        }
        retrying("ack", log) {
            if try self.queue.ack(job, worker: self.settings.id, checksum: result.checksum, bytes: result.bytes, on: redis) {
                log.info("moved", metadata: ["job.from": "\(job.dbLevel)", "job.to": "\(job.target)", "job.bytes": "\(result.bytes)",
                                             "job.method": "\(result.method.rawValue)"])
            } else {
                log.warning("moved, but the job was no longer ours (its heartbeat had expired); the next delivery will find it in place")
            }
        }
    }

    /// The temporary file recorded in the job, if it is one this program names, inside a level
    /// directory (the hash is data: never unlink a path it merely claims).
    private func ownPart(_ job: Job) -> String? {
        job.part.flatMap { validPart($0, cid: job.cid) }
    }

    private func validPart(_ part: String, cid: Int64?) -> String? {
        guard let slash = part.lastIndex(of: "/"), !part.contains("/../"), !part.contains("/./"), isInsideLevels(part) else { return nil }
        let name = part[part.index(after: slash)...]
        let marker = cid.map { ".relocator-\($0)-" } ?? ".relocator-"
        guard name.hasPrefix("."), name.hasSuffix(".part"), name.contains(marker) else { return nil }
        return part
    }

    private func isInsideLevels(_ path: String) -> Bool {
        settings.directories.names.contains { level in
            let root = settings.directories.directory(of: level)!
            return path.hasPrefix(root.hasSuffix("/") ? root : root + "/")
        }
    }

    private func fail(_ job: Job, _ error: MoveError, permanent forced: Bool = false, on redis: RedisConnection, _ log: Logger) {
        // One checksum mismatch is retried; the same again is permanent.
        let repeated = error.kind == .checksumMismatch && (job.lastError?.hasPrefix(MoveError.Kind.checksumMismatch.rawValue) ?? false)
        let permanent = forced || error.isPermanent || repeated
        let delay = settings.retry.delay(afterFailures: job.attempts + 1)
        retrying("fail", log) {
            let outcome = try self.queue.fail(job, worker: self.settings.id, error: error.description, permanent: permanent,
                                              delay: delay, maxAttempts: self.settings.retry.maxAttempts, on: redis)
            switch outcome {
            case .retrying: log.warning("move failed, retrying in \(delay): \(error)")
            case .dead: log.error("move failed for good, job is in the dead-letter list: \(error)")
            case .dropped, .stale: log.info("move failed (\(error)); the job had changed meanwhile (\(outcome.rawValue))")
            }
        }
    }

    /// Runs a Redis step until it succeeds (Redis may be restarting); gives up only when the moves
    /// are being cancelled — the job then stays in `processing` and goes back to its queue.
    private func retrying(_ what: String, _ log: Logger, _ body: () throws -> Void) {
        var delay = 100
        while true {
            do {
                try body()
                return
            } catch {
                if cancelMoves.load(ordering: .relaxed) {
                    log.error("cannot \(what) before stopping: \(error); the job stays held and goes back to its queue")
                    return
                }
                log.warning("cannot \(what) yet: \(error)")
                usleep(UInt32(delay) * 1000)
                delay = min(delay * 2, 5000)
            }
        }
    }

    private func retrying(_ what: String, attempts: Int, _ body: () throws -> Void) throws {
        var last: (any Error)?
        for attempt in 0..<attempts {
            do { return try body() } catch { last = error }
            usleep(UInt32(200_000 << attempt))
        }
        logger.error("cannot \(what): \(last!)")
        throw last!
    }
}

/// Runs a blocking loop on a thread of its own as a `Service`: a graceful shutdown (SIGTERM) calls
/// `onShutdown`, and the service ends when the loop returns.
func runOnThread(_ name: String, onShutdown: @escaping @Sendable () -> Void, _ body: @escaping @Sendable () throws -> Void) async throws {
    try await withGracefulShutdownHandler {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let thread = Thread { continuation.resume(with: Result { try body() }) }
            thread.name = name
            thread.start()
        }
    } onGracefulShutdown: {
        onShutdown()
    }
}
