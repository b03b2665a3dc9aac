import RelocatorApp
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
        /// Group commit: after a batch smaller than `batch`, the next one is taken this long after
        /// it (less the time its writing took), so that the moves done meanwhile are written in one
        /// transaction rather than a few each (a commit's cost is mostly the transaction's).
        public var linger: Duration = .milliseconds(20)
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
        // Also when the group is cancelled (another of the process's services failed): stopping
        // then is the only way out of the blocking loop.
        try await withTaskCancellationOrGracefulShutdownHandler {
            try await BlockingExecutor.onThread(named: "committer") { try self.runBlocking() }
        } onCancelOrGracefulShutdown: {
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
        // Refused while another live process beats under this id: a worker's moves in flight
        // would be handed back, unfenced, as this committer stops.
        if case let owner?? = try untilAvailable(stopping: stopping, health: redisHealth, {
            try IDInUse.find(settings.id, starting: .committer, heartbeatTTL: settings.heartbeatTTL, stopping: stopping, session)
        }) {
            throw owner
        }
        // The half-life the counts are kept with must be this committer's (checked once Redis answers).
        var agreed = false
        do {
            _ = try session.control(.start)
            _ = try session.control(.agreeOnHalfLife(settings.halfLife))
            agreed = true
            _ = try session.maintain(MaintenanceRequest(beat: beat, ttl: settings.heartbeatTTL))
        } catch {
            if waitingCannotMend(error) { throw error }
            redisHealth.failed(error)
        }
        // The heartbeat goes on until what this committer holds is handed back: a process started
        // under its id meanwhile is refused, not handed this one's batch.
        let handedBack = StopSignal(), heartbeatDone = StopSignal()
        BlockingExecutor.thread(named: "committer-beat") {
            self.heartbeatLoop(until: handedBack)
            heartbeatDone.raise()
        }
        logger.info("started", metadata: ["batch": "\(settings.batch)", "shards": "\(session.shardCount)"])
        // The next batch is taken on a second session while the database writes the current one.
        let prefetchSession = driver.session()
        defer { prefetchSession.close() }
        var prefetched: DoneBatch?
        var rotation = 0
        var backoff = ReconnectBackoff()
        var refusal: HalfLifeChange?
        while !stopping.isRaised {
            do {
                if !agreed {
                    _ = try session.control(.agreeOnHalfLife(settings.halfLife))
                    agreed = true
                }
                var next = prefetched
                prefetched = nil
                if next == nil || next!.isEmpty { next = try takeBatch(session, rotation: &rotation) }
                redisHealth.succeeded()
                backoff.succeeded()
                guard let batch = next, !batch.isEmpty else { continue }
                prefetched = try commit(batch, session: session, database: &database, prefetchOn: prefetchSession)
            } catch let error as HalfLifeChange {
                // Stops, after handing back what it holds (below).
                refusal = error
                break
            } catch {
                // Whatever was taken stays in committing:<id> and is taken again (held first).
                prefetched = nil
                redisHealth.failed(error)
                backoff.failed(waitingOn: stopping)
            }
        }
        // What is still held goes back to `done` for the next committer (or, if Redis is down, to
        // the reaper once the heartbeat expires).
        do {
            let handed = try session.release(worker: settings.id, fence: false)
            if handed > 0 { logger.info("handed \(handed) jobs back to done") }
            handedBack.raise()
            heartbeatDone.wait(for: .seconds(10))
            _ = try session.control(.unregister(worker: settings.id))
        } catch {
            handedBack.raise()
            logger.warning("cannot hand back the batch before stopping (the reaper will): \(error)")
        }
        if let refusal { throw refusal }
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
        // A full batch says more are waiting: the next is taken at once.
        let linger = entries.count < max ? settings.linger : .zero
        let stopping = self.stopping
        let next = BlockingExecutor.shared.start {
            // Stopping: nothing more is taken (what is held goes back to `done` once this ends).
            if linger > .zero && stopping.wait(for: linger) { return DoneBatch(shard: shard, ids: [], jobs: []) }
            return try prefetchSession.nextDone(committer: id, shard: shard, max: max, wait: .zero, fresh: true)
        }
        /// Before this batch goes back (the committer stops): the next batch's taking is awaited,
        /// so that nothing is taken once they went back; what it took stays held with this one.
        func awaitNext() {
            do {
                _ = try next.wait()
            } catch {
                logger.debug("the next batch was not taken: \(error)")
            }
        }
        let started = ContinuousClock.now
        let levels: [String], policy: CountPolicy
        do {
            (levels, policy) = try writeUntilStored(batch.jobs, database: &database)
        } catch {
            awaitNext()
            throw error
        }
        ServiceMetrics.commit(jobs: entries.count, duration: .now - started)
        var outcome = CommitResult(followUps: 0, unknownLevel: [])
        var backoff = ReconnectBackoff()
        while true {
            do {
                outcome = try session.commit(batch, committer: settings.id, levels: levels, policy: policy, keep: settings.jobTTL)
                break
            } catch {
                // Written in SQL: the batch stays held and is written again (harmlessly) if this
                // committer stops now.
                redisHealth.failed(error)
                if backoff.failed(waitingOn: stopping) {
                    awaitNext()
                    throw error
                }
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
    private func writeUntilStored(_ jobs: [Job], database: inout (any SQLDatabase)?) throws -> ([String], CountPolicy) {
        var backoff = ReconnectBackoff()
        while true {
            do {
                if database == nil { database = try openDatabase() }
                let recorded = try Commit.record(jobs, in: SQLContentStore(database: database!), halfLife: settings.halfLife)
                databaseHealth.succeeded()
                return recorded
            } catch let error as SQLError {
                if error.isTransient || [.unknownDatabase, .authenticationFailed, .databaseFileMissing, .permissionDenied].contains(error.code) {
                    database?.close()
                    database = nil
                }
                databaseHealth.failed(error)
                ServiceMetrics.commitFailed()
                if backoff.failed(waitingOn: stopping) { throw error }
            }
        }
    }

    /// The heartbeat, every third of its time to live, until `done` is raised.
    private func heartbeatLoop(until done: StopSignal) {
        let session = driver.session()
        defer { session.close() }
        let interval = Heartbeat.renewalInterval(ttl: settings.heartbeatTTL)
        var beat = beat
        repeat {
            do {
                let port = metricsPort.load(ordering: .relaxed)
                beat.metricsPort = port > 0 ? port : nil
                _ = try session.maintain(MaintenanceRequest(beat: beat, ttl: settings.heartbeatTTL))
            } catch {
                redisHealth.failed(error)
            }
        } while !done.wait(for: interval)
    }
}
