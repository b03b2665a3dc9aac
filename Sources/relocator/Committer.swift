import Dispatch
import Foundation
import JobQueue
import Logging
import RedisClient
import RelocatorCore
import ServiceLifecycle
import SQLStore
import Synchronization

/// Records verified moves in SQL: takes up to `batch` done jobs into `committing:<id>`, writes them
/// in one transaction, then marks them committed (or starts their follow-up). While the database or
/// Redis is down it waits with backoff; the jobs wait in `done`/`committing`, nothing is lost, and a
/// batch written twice is recorded once.
final class Committer: Service, @unchecked Sendable {
    struct Settings {
        var id: String
        var batch: Int
        var redis: RedisURL
        var keys: RedisKeys
        var database: DatabaseURL
        var jobTTL: Duration
        var heartbeatTTL: Duration
    }

    let settings: Settings
    let queue: JobQueue
    let logger: Logger
    private let stopping = Atomic<Bool>(false)
    private var database: (any SQLDatabase)?
    private var lastHeartbeat = ContinuousClock.now - .seconds(3600)

    init(settings: Settings, logger: Logger) {
        self.settings = settings
        self.queue = JobQueue(keys: settings.keys)
        var logger = logger
        logger[metadataKey: "committer"] = "\(settings.id)"
        self.logger = logger
    }

    func run() async throws {
        try await runOnThread("committer", onShutdown: { self.stopping.store(true, ordering: .sequentiallyConsistent) }) {
            try self.runBlocking()
        }
    }

    private var isStopping: Bool { stopping.load(ordering: .relaxed) }

    func runBlocking() throws {
        let redis = RedisConnection(url: settings.redis)
        // Open the database now, so a wrong password or database name stops the process at once;
        // a server that is down is waited for.
        do {
            database = try openDatabase(settings.database)
        } catch let error as SQLError where error.isTransient {
            logger.warning("the database is unreachable; waiting for it: \(error)")
        }
        try queue.heartbeat(worker: settings.id, ttl: settings.heartbeatTTL, on: redis)
        lastHeartbeat = .now
        logger.info("started", metadata: ["batch": "\(settings.batch)", "database": "\(settings.database)"])
        var failures = 0
        // The next batch is taken on a second connection while the database writes the current one.
        let prefetchConnection = RedisConnection(url: settings.redis)
        defer { prefetchConnection.close() }
        var prefetched: [(id: String, job: Job?)]?
        while !isStopping {
            do {
                try heartbeatIfDue(redis)
                let batch: [(id: String, job: Job?)]
                if let next = prefetched, !next.isEmpty {
                    batch = next
                } else {
                    batch = try queue.takeDone(committer: settings.id, max: settings.batch, on: redis)
                }
                prefetched = nil
                if batch.isEmpty {
                    _ = try queue.waitForDone(committer: settings.id, timeout: .seconds(1), on: redis)
                    continue
                }
                prefetched = try commit(batch, redis: redis, prefetchOn: prefetchConnection)
                failures = 0
            } catch {
                // Whatever was taken stays in committing:<id> and is taken again (held first).
                prefetched = nil
                failures += 1
                logger.warning("cannot commit yet: \(error)")
                pause(.milliseconds(min(10_000, 250 << min(failures, 6))), redis: redis)
            }
        }
        // What is still held goes back to `done` for the next committer (or, if Redis is down now,
        // to the reaper once the heartbeat expires).
        do {
            try queue.release(worker: settings.id, on: redis)
            try queue.unregister(worker: settings.id, on: redis)
        } catch {
            logger.warning("cannot hand back the batch before stopping (the reaper will): \(error)")
        }
        database?.close()
        logger.info("stopped")
    }

    /// Writes a batch and marks it committed; meanwhile takes the next batch on `prefetchOn`,
    /// which it returns (fresh jobs only: they sit at the head of the list, this batch at its tail).
    private func commit(_ batch: [(id: String, job: Job?)], redis: RedisConnection,
                        prefetchOn second: RedisConnection) throws -> [(id: String, job: Job?)] {
        let entries = batch.compactMap { item -> CommitEntry? in
            guard let job = item.job, job.status == .done, job.id == item.id else { return nil }
            return CommitEntry(job)
        }
        nonisolated(unsafe) var next: Result<[(id: String, job: Job?)], any Error> = .success([])
        let group = DispatchGroup()
        let (queue, id, max) = (self.queue, settings.id, settings.batch)
        DispatchQueue.global().async(group: group) {
            next = Result { try queue.takeDone(committer: id, max: max, fresh: true, on: second) }
        }
        defer { group.wait() }
        try writeUntilStored(entries, redis: redis)
        let followUps = try queue.markCommitted(ids: batch.map(\.id), from: settings.id, ttl: settings.jobTTL, on: redis)
        logger.info("committed", metadata: ["batch.size": "\(entries.count)", "batch.follow_ups": "\(followUps)"])
        group.wait()
        do {
            return try next.get()
        } catch {
            // Nothing is lost: whatever the prefetch moved is in committing:<id>, taken again next.
            logger.warning("cannot take the next batch yet: \(error)")
            return []
        }
    }

    /// The SQL transaction, again and again while the database is unreachable.
    private func writeUntilStored(_ entries: [CommitEntry], redis: RedisConnection) throws {
        var failures = 0
        while true {
            do {
                if database == nil { database = try openDatabase(settings.database) }
                try ContentStore(database: database!).commit(entries)
                if failures > 0 { logger.info("the database is back") }
                return
            } catch let error as SQLError {
                if error.isTransient || error.code == .unknownDatabase || error.code == .authenticationFailed {
                    database?.close()
                    database = nil
                }
                failures += 1
                if failures == 1 || failures % 10 == 0 {
                    logger.warning("cannot write \(entries.count) jobs (they wait in committing:\(settings.id)): \(error)")
                }
                if isStopping { throw error }
                pause(.milliseconds(min(5000, 100 << min(failures, 6))), redis: redis)
            }
        }
    }

    /// Sleeps in short steps, keeping the heartbeat alive so the reaper leaves the batch alone.
    private func pause(_ duration: Duration, redis: RedisConnection) {
        let deadline = ContinuousClock.now + duration
        while ContinuousClock.now < deadline && !isStopping {
            do {
                try heartbeatIfDue(redis)
            } catch {
                logger.debug("heartbeat failed: \(error)")
            }
            usleep(50_000)
        }
    }

    private func heartbeatIfDue(_ redis: RedisConnection) throws {
        let interval = settings.heartbeatTTL / 3
        guard ContinuousClock.now - lastHeartbeat >= interval else { return }
        try queue.heartbeat(worker: settings.id, ttl: settings.heartbeatTTL, on: redis)
        lastHeartbeat = .now
    }
}
