import Foundation
import JobQueue
import Logging
import RedisClient
import RelocatorCore
import ServiceLifecycle
import SQLStore
import Synchronization

/// Records verified moves in SQL: takes up to `batch` done jobs of a shard into
/// `committing:<id>`, writes them in one transaction, then marks them committed (or starts their
/// follow-up). While the database or Redis is down it waits with backoff; the jobs wait in
/// `done`/`committing`, nothing is lost, and a batch written twice is recorded once. Its heartbeat
/// runs on a thread of its own, so a long transaction or an outage never lets the reaper take the
/// batch it holds; a stop during an outage hands the batch back to `done`.
public final class Committer: Service, Sendable {
    public struct Settings: Sendable {
        public var id: String
        public var batch: Int
        public var jobTTL: Duration
        public var heartbeatTTL: Duration
        /// How long an idle committer blocks on one shard's `done` list before it looks at all.
        public var idleWait: Duration = .milliseconds(500)
        /// The half-life of hit counters (`RELOCATOR_HALF_LIFE`), when counts decay.
        public var halfLife: Duration?

        public init(id: String, batch: Int = 500, jobTTL: Duration = .seconds(86400), heartbeatTTL: Duration = .seconds(10)) {
            self.id = id
            self.batch = batch
            self.jobTTL = jobTTL
            self.heartbeatTTL = heartbeatTTL
        }
    }

    public let settings: Settings
    let driver: any JobQueueDriver
    let openDatabase: @Sendable () throws -> any SQLDatabase
    let logger: Logger
    let redisHealth: OutageLog
    let databaseHealth: OutageLog
    let stopping = StopSignal()
    /// What the last batch did, for tests and metrics.
    public let committedJobs = Atomic<Int>(0)
    /// What `status` and the dashboard show of it.
    let beat: Heartbeat
    /// The port of this process's metrics server, 0 while it has none (the heartbeat shows it).
    let metricsPort = Atomic<Int>(0)

    public init(settings: Settings, driver: any JobQueueDriver, openDatabase: @escaping @Sendable () throws -> any SQLDatabase, logger: Logger) {
        self.settings = settings
        self.driver = driver
        self.openDatabase = openDatabase
        var logger = logger
        logger[metadataKey: "committer"] = "\(settings.id)"
        self.logger = logger
        redisHealth = OutageLog("Redis", logger: logger)
        databaseHealth = OutageLog("the database", logger: logger)
        beat = Heartbeat(id: settings.id, kind: .committer, host: ProcessInfo.processInfo.hostName, pid: Int(getpid()),
                         startedAt: WallClock.milliseconds())
    }

    public func run() async throws {
        try await withGracefulShutdownHandler {
            try await BlockingExecutor.onThread(named: "committer") { try self.runBlocking() }
        } onGracefulShutdown: {
            self.stop()
        }
    }

    /// The process serves its metrics on `port` from now on: the heartbeat says so.
    public func metricsServed(on port: Int) {
        metricsPort.store(port, ordering: .relaxed)
    }

    public func stop() {
        if stopping.raise() { logger.info("stopping after the batch in hand") }
    }

    public func runBlocking() throws {
        let session = driver.session()
        defer { session.close() }
        // A wrong password or database name stops the process at once; a server that is down is
        // waited for.
        var database: (any SQLDatabase)?
        defer { database?.close() }
        do {
            database = try openDatabase()
        } catch let error as SQLError where error.isTransient {
            databaseHealth.failed(error)
        }
        do {
            _ = try session.control(.start)
            _ = try session.maintain(MaintenanceRequest(beat: beat, ttl: settings.heartbeatTTL))
        } catch let error as RedisError where error.code == .authentication {
            throw error
        } catch let error as JobQueue.ShardCountChange {
            throw error
        } catch {
            redisHealth.failed(error)
        }
        let heartbeatDone = StopSignal()
        BlockingExecutor.thread(named: "committer-beat") {
            self.heartbeatLoop()
            heartbeatDone.raise()
        }
        logger.info("started", metadata: ["batch": "\(settings.batch)", "shards": "\(session.shardCount)"])
        // The next batch is taken on a second session while the database writes the current one.
        let prefetchSession = driver.session()
        defer { prefetchSession.close() }
        var prefetched: DoneBatch?
        var rotation = 0
        var failures = 0
        while !stopping.isRaised {
            do {
                var next = prefetched
                prefetched = nil
                if next == nil || next!.isEmpty { next = try takeBatch(session, rotation: &rotation) }
                redisHealth.succeeded()
                failures = 0
                guard let batch = next, !batch.isEmpty else { continue }
                prefetched = try commit(batch, session: session, database: &database, prefetchOn: prefetchSession)
            } catch {
                // Whatever was taken stays in committing:<id> and is taken again (held first).
                prefetched = nil
                redisHealth.failed(error)
                failures += 1
                stopping.wait(for: RetryPolicy.reconnect.delay(afterFailures: failures))
            }
        }
        // What is still held goes back to `done` for the next committer (or, if Redis is down, to
        // the reaper once the heartbeat expires).
        heartbeatDone.wait(for: .seconds(10))
        do {
            let handed = try session.release(worker: settings.id, fence: false)
            if handed > 0 { logger.info("handed \(handed) jobs back to done") }
            _ = try session.control(.unregister(worker: settings.id))
        } catch {
            logger.warning("cannot hand back the batch before stopping (the reaper will): \(error)")
        }
        logger.info("stopped")
    }

    /// The next batch of any shard; after an idle wait on one shard, nil.
    private func takeBatch(_ session: any JobQueueSession, rotation: inout Int) throws -> DoneBatch? {
        let shards = session.shardCount
        rotation &+= 1
        for step in 0..<shards {
            let batch = try session.nextDone(committer: settings.id, shard: (rotation + step) % shards, max: settings.batch, wait: .zero, fresh: false)
            if !batch.isEmpty { return batch }
        }
        let waited = try session.nextDone(committer: settings.id, shard: rotation % shards, max: settings.batch, wait: settings.idleWait, fresh: false)
        return waited.isEmpty ? nil : waited
    }

    /// Writes a batch and marks it committed; meanwhile takes the next batch of the same shard on
    /// `prefetchOn` (fresh jobs only: they sit at the head of the list, this batch at its tail),
    /// which it returns.
    private func commit(_ batch: DoneBatch, session: any JobQueueSession, database: inout (any SQLDatabase)?,
                        prefetchOn second: any JobQueueSession) throws -> DoneBatch? {
        let entries = batch.jobs.map(CommitEntry.init)
        let (id, max, shard) = (settings.id, settings.batch, batch.shard)
        nonisolated(unsafe) let prefetchSession = second
        let next = BlockingExecutor.shared.start {
            try prefetchSession.nextDone(committer: id, shard: shard, max: max, wait: .zero, fresh: true)
        }
        let started = ContinuousClock.now
        let (levels, policy) = try writeUntilStored(entries, database: &database)
        ServiceMetrics.commit(jobs: entries.count, duration: .now - started)
        var outcome = CommitResult(followUps: 0, unknownLevel: [])
        var failures = 0
        while true {
            do {
                outcome = try session.commit(batch, committer: settings.id, levels: levels, policy: policy, keep: settings.jobTTL)
                break
            } catch {
                // Written in SQL: the batch stays held and is written again (harmlessly) if this
                // committer stops now.
                redisHealth.failed(error)
                failures += 1
                if stopping.wait(for: RetryPolicy.reconnect.delay(afterFailures: failures)) { throw error }
            }
        }
        redisHealth.succeeded()
        committedJobs.add(entries.count, ordering: .relaxed)
        logger.info("committed", metadata: ["batch.size": "\(entries.count)", "batch.follow_ups": "\(outcome.followUps)"])
        for id in outcome.unknownLevel {
            logger.warning("job \(id): its follow-up names a level the level table no longer has; committed without it")
        }
        do {
            return try next.wait()
        } catch {
            // Nothing is lost: whatever the prefetch moved is in committing:<id>, taken again next.
            logger.warning("cannot take the next batch yet: \(error)")
            return nil
        }
    }

    /// The SQL transaction, again and again while the database is unreachable. Returns the level
    /// names (where a follow-up may go) and what the policies say of a follow-up.
    private func writeUntilStored(_ entries: [CommitEntry], database: inout (any SQLDatabase)?) throws -> ([String], CountPolicy) {
        var failures = 0
        while true {
            do {
                if database == nil { database = try openDatabase() }
                try ContentStore(database: database!).commit(entries)
                let store = LevelStore(database: database!)
                let snapshot = PlacementSnapshot(levels: try store.levels(), policies: try store.policies(), halfLife: settings.halfLife)
                databaseHealth.succeeded()
                return (snapshot.levels.map(\.name), snapshot.countPolicy)
            } catch let error as SQLError {
                if error.isTransient || [.unknownDatabase, .authenticationFailed, .databaseFileMissing, .permissionDenied].contains(error.code) {
                    database?.close()
                    database = nil
                }
                databaseHealth.failed(error)
                ServiceMetrics.commitFailed()
                failures += 1
                if stopping.wait(for: RetryPolicy.reconnect.delay(afterFailures: failures)) { throw error }
            }
        }
    }

    /// The heartbeat, every third of its time to live, until the committer stops.
    private func heartbeatLoop() {
        let session = driver.session()
        defer { session.close() }
        let interval = Duration.milliseconds(max(100, settings.heartbeatTTL.milliseconds / 3))
        var beat = beat
        repeat {
            do {
                let port = metricsPort.load(ordering: .relaxed)
                beat.metricsPort = port > 0 ? port : nil
                _ = try session.maintain(MaintenanceRequest(beat: beat, ttl: settings.heartbeatTTL))
            } catch {
                redisHealth.failed(error)
            }
        } while !stopping.wait(for: interval)
    }
}
