import FileMover
import Foundation
import JobQueue
import Logging
import RedisClient
import RelocatorCore
import ServiceLifecycle
import Synchronization

/// Moves files: `concurrency` slots take jobs of the levels it serves (from every shard), move them
/// safely and acknowledge or fail them (a move whose source is removed goes to the finisher, which
/// fsyncs the source directories of many moves at once and then acknowledges them); a maintenance loop keeps the heartbeat, promotes due
/// retries, reaps dead workers, removes stale temporary files and gives back what the worker holds
/// in Redis but no slot knows of (a claim whose reply was lost).
///
/// Stopping (SIGTERM): no new job is taken; moves in flight get `gracePeriod` to finish, then are
/// cancelled (a move already handed to the finisher is synced and acknowledged, or, if Redis cannot
/// be reached by then, stays held); whatever is still held goes back to its queue without counting
/// an attempt.
public final class Worker: Service, Sendable {
    public struct Settings: Sendable {
        public var id: String
        /// Levels whose queues this worker takes jobs from.
        public var levels: [String]
        /// Every level's directory on this machine (a move reads from and writes to them).
        public var directories: LevelDirectories
        public var concurrency: Int
        public var retry: RetryPolicy
        public var heartbeatTTL: Duration
        public var gracePeriod: Duration
        /// How long an idle slot blocks on one queue before it looks at all of them again.
        public var idleWait: Duration = .milliseconds(500)
        /// Moves of at least this many bytes record their progress in the job, at most once per
        /// `progressInterval`.
        public var progressMinimumBytes: Int64 = 8 << 20
        public var progressInterval: Duration = .seconds(1)
        /// How long a job deferred for lack of room waits before it is tried again.
        public var deferRetry: Duration = .seconds(30)
        /// How long a job whose content's lock another delivery holds waits before it is tried again.
        public var lockedRetry: Duration = .seconds(2)
        /// How often the temporary files left in the levels' reserved directories are swept.
        public var sweepInterval: Duration = .seconds(30)
        /// The address other workers reach this one's transfer endpoint at (port 0: the port the
        /// endpoint listens on), advertised in its heartbeat with the levels whose directories it
        /// holds once the endpoint listens (`transferServed`). Nil: it serves no transfers, as when
        /// every worker sees every level.
        public var transfer: TransferAddress?
        /// Levels of `RELOCATOR_LEVELS` whose directory is on another host: a move from one is
        /// pulled (and waits while no live worker serves it); a level named nowhere is a failure.
        public var remoteLevels: Set<String> = []
        /// The checksum of a pulled copy (the mover's, `RELOCATOR_CHECKSUM`).
        public var checksum: ChecksumAlgorithm = .xxh128
        /// The key the workers share (`--transfer-secret-file`): the pull signs its requests with it.
        public var transferSigningKey: TransferSigningKey?
        /// This worker's endpoint speaks TLS only (`--transfer-tls-cert`): its heartbeat says so.
        public var transferServesTLS = false
        /// The CAs a pull checks the certificate of a peer that speaks TLS against
        /// (`--transfer-tls-ca`); nil: such a peer is refused (`transfer_tls`).
        public var transferTrust: TransferTLSTrust?

        public init(id: String, levels: [String], directories: LevelDirectories, concurrency: Int, retry: RetryPolicy = .default,
                    heartbeatTTL: Duration = .seconds(10), gracePeriod: Duration = .seconds(30)) {
            self.id = id
            self.levels = levels
            self.directories = directories
            self.concurrency = concurrency
            self.retry = retry
            self.heartbeatTTL = heartbeatTTL
            self.gracePeriod = gracePeriod
        }
    }

    public let settings: Settings
    let driver: any JobQueueDriver
    let mover: any FileMoving
    let logger: Logger
    let redisHealth: OutageLog
    /// Raised when the worker stops taking jobs; `cancel` when moves in flight must end.
    let stopping = StopSignal()
    let cancel = StopSignal()
    /// The ids the slots hold (taken, not yet acknowledged or failed), as `shard/id`.
    let holding = Mutex<Set<String>>([])
    /// Levels an operator paused (refreshed by the maintenance loop).
    let pausedLevels = Mutex<Set<String>>([])
    /// The level directories held open since the start (nil: a test's worker without them).
    let levels: HeldLevels?
    /// Levels whose directory is no longer the one held (unmounted, remounted, replaced) or does
    /// not answer, with why: out of service for this worker until they are the same again.
    let unavailableLevels = Mutex<[String: String]>([:])
    /// The held levels' checks, each on a thread of its own (nil without held levels).
    let levelWatch: LevelWatch?
    let startedAt = JobQueue.nowMilliseconds()
    /// The level table and policies the committer published (nil before any).
    let placement = Mutex<PlacementSnapshot?>(nil)
    /// Moves handed from the slots to their levels' finishers (their source directories still to be synced).
    let finishing = FinishingMoves()
    /// Raised once every slot has ended: nothing more is handed to the finishers.
    let slotsEnded = StopSignal()
    /// Levels served that the level table does not have, each warned of once.
    let warnedLevels = Mutex<Set<String>>([])
    /// The port of this process's metrics server, 0 while it has none (the heartbeat shows it).
    let metricsPort = Atomic<Int>(0)
    /// Where this worker's transfer endpoint is reached, once it listens (the heartbeat advertises it).
    let transferAdvertised = Mutex<TransferAddress?>(nil)
    /// The live workers' heartbeats as a pull last read them, and when (`Worker.transferPeers`).
    let heartbeatsRead = Mutex<(at: ContinuousClock.Instant, beats: [Heartbeat])?>(nil)

    public init(settings: Settings, driver: any JobQueueDriver, mover: any FileMoving, levels: HeldLevels? = nil, logger: Logger) {
        self.settings = settings
        self.driver = driver
        self.mover = mover
        self.levels = levels
        let interval = Heartbeat.renewalInterval(ttl: settings.heartbeatTTL)
        var logger = logger
        logger[metadataKey: "worker"] = "\(settings.id)"
        self.logger = logger
        levelWatch = levels.map { [driver, logger] in
            LevelWatch($0, settings.directories, interval: interval, patience: Self.levelPatience(heartbeatTTL: settings.heartbeatTTL),
                       queue: { driver.session() }, logger: logger)
        }
        self.redisHealth = OutageLog("Redis", logger: logger)
    }

    /// How long a level's disk may take to answer a check before the level is out of service: a
    /// heartbeat's lease, and at least 5 s (a loaded machine may hold a thread that long between
    /// two instructions) — a disk that does not answer, not a slow one.
    public static func levelPatience(heartbeatTTL: Duration) -> Duration {
        max(heartbeatTTL, .seconds(5))
    }

    public func run() async throws {
        // Also when the group is cancelled (another of the process's services failed): stopping
        // then is the only way out of the blocking loop.
        try await withTaskCancellationOrGracefulShutdownHandler {
            try await BlockingExecutor.onThread(named: "worker") { try self.runBlocking() }
        } onCancelOrGracefulShutdown: {
            self.stop()
        }
    }

    /// The process serves its metrics on `port` from now on: the heartbeat says so.
    public func metricsServed(on port: Int) {
        metricsPort.store(port, ordering: .relaxed)
    }

    /// The process's transfer endpoint listens on `port`: the heartbeat advertises `settings.transfer`
    /// (with this port when its own is 0) from now on.
    public func transferServed(on port: Int) {
        guard let address = settings.transfer else { return }
        transferAdvertised.withLock { $0 = TransferAddress(host: address.host, port: address.port == 0 ? port : address.port) }
    }

    /// Stops taking jobs; moves in flight get the grace period.
    public func stop() {
        if stopping.raise() {
            logger.info("stopping: no new jobs; moves in flight have \(settings.gracePeriod) to finish")
        }
    }

    /// The worker's life on the calling thread: returns once every slot has ended and what the
    /// worker held went back.
    public func runBlocking() throws {
        let control = driver.session()
        defer { control.close() }
        // The level checks' threads end with the worker, however it ends.
        defer { levelWatch?.end() }
        guard let owner = try untilAvailable(stopping: stopping, health: redisHealth, {
            try IDInUse.find(self.settings.id, starting: .worker, heartbeatTTL: self.settings.heartbeatTTL, stopping: self.stopping, control)
        }) else {
            // Stopped before it started (a stop, or another of the process's services failing).
            logger.info("stopped")
            return
        }
        if let owner { throw owner }
        let recovered = try untilAvailable(stopping: stopping, health: redisHealth) {
            if case .warnings(let warnings) = try control.control(.start) {
                for warning in warnings { self.logger.warning("\(warning)") }
            }
            // A level seen in use before whose directory lacks .relocator/ (a bare mountpoint) is
            // out of service from the start: checkLevels logs it, the heartbeat names it.
            if let levels = self.levels {
                try LevelPreparation.prepare(Array(levels.roots.values), control).warnNotInitialised(self.logger)
            }
            self.levelWatch?.start()
            self.checkLevels()
            try self.maintain(control, promote: false)
            // An earlier run under this id may still live (a paused process): its deliveries are fenced.
            return try control.release(worker: self.settings.id, fence: true)
        }
        guard let recovered else {
            logger.info("stopped")
            return
        }
        if recovered > 0 { logger.info("gave back \(recovered) jobs held by an earlier run of this worker") }
        logger.info("started", metadata: ["levels": "\(settings.levels.joined(separator: ","))",
                                          "concurrency": "\(settings.concurrency)", "shards": "\(control.shardCount)"])
        let remaining = Atomic<Int>(settings.concurrency)
        let finished = StopSignal()
        for slot in 0..<settings.concurrency {
            BlockingExecutor.thread(named: "slot-\(slot)") {
                self.slotLoop(slot)
                guard remaining.subtract(1, ordering: .sequentiallyConsistent).newValue == 0 else { return }
                // The last slot waits for the levels' finishers (nothing is handed over any more).
                self.slotsEnded.raise()
                self.finishing.wake()
                let stuck = self.finishing.waitForFinishers(cancel: self.cancel, patience: Self.levelPatience(heartbeatTTL: self.settings.heartbeatTTL))
                for level in stuck {
                    self.logger.error("an fsync of a directory of level '\(level)' has not returned: its moves, whose files are published, go back to their queues (each next delivery syncs the directory before it acknowledges)")
                }
                finished.raise()
            }
        }
        // Apart from the heartbeat: a sweep waiting on a level that does not answer holds up nothing else.
        BlockingExecutor.thread(named: "sweeper") {
            while !finished.wait(for: self.settings.sweepInterval) { self.sweepTemporaries() }
        }
        maintenanceLoop(control, until: finished)

        // Hand back what is still held (cancelled moves, ids taken as the stop came), then leave.
        var backoff = ReconnectBackoff()
        while true {
            do {
                // Every slot has ended: nothing given back here is still being acted on, but for the
                // acks of a finisher stuck in an fsync, which carry their delivery's token and are
                // refused once the job is given back.
                let given = try control.release(worker: settings.id, fence: false)
                if given > 0 { logger.info("gave back \(given) jobs") }
                _ = try control.control(.unregister(worker: settings.id))
                break
            } catch {
                if backoff.failures >= 4 {
                    logger.error("cannot give back the jobs before stopping (the reaper will, once the heartbeat expires): \(error)")
                    break
                }
                // The worker is stopping: the wait is the backoff's alone.
                backoff.failed(waitingOn: StopSignal())
            }
        }
        logger.info("stopped")
    }

    static func key(_ shard: Int, _ id: String) -> String { "\(shard)/\(id)" }

    /// How a move between two levels goes: linked when both directories are on one filesystem.
    func method(from: String, to: String) -> MoveMethod {
        func device(_ level: String) -> UInt64? {
            guard let path = settings.directories.directory(of: level) else { return nil }
            var info = stat()
            return stat(path, &info) == 0 ? UInt64(info.st_dev) : nil
        }
        guard let a = device(from), let b = device(to) else { return .copied }
        return a == b ? .linked : .copied
    }
}
