import FileMover
import Logging
import RelocatorCore
import Synchronization

/// The application: every use case the HTTP API and the command line call —
/// submit a count or hits, commit a done job, replay and purge dead letters, pause and resume a
/// level, read a content, its job and why it is where it is, the queue's statistics, readiness —
/// written against a queue (`QueueGateway`) and a store (`StoreGateway`), and nothing below them.
/// The API and the command line wire it over Redis and SQL; tests over the memory queue and store.
public final class App: Sendable {
    public let queue: any QueueGateway
    public let store: any StoreGateway
    public let levels: LevelCache
    public let contents: ContentCache
    /// How long a committed job's hash stays readable.
    public let jobTTL: Duration
    /// The level directories, when this process can see them: a filename that passes through a
    /// symbolic link there is refused at once (workers refuse it again when they open it), and
    /// `why` says where the file really is.
    public let directories: LevelDirectories?
    /// The half-life of hit counters (`RELOCATOR_HALF_LIFE`), when counts decay.
    public let halfLife: Duration?
    /// This process's clock (ms since 1970), for what is shown; tests give one that jumps.
    public let clock: @Sendable () -> Int64
    /// This process's monotonic clock (ms), on which the queue's clock is learnt (`queueClock`)
    /// and a cached read's age is measured.
    public let monotonic: @Sendable () -> Int64
    /// A lower bound of the queue's clock, learnt from the submissions' answers, per shard (the
    /// shards of a Redis Cluster live on nodes whose clocks may differ).
    let queueClocks = Mutex<[Int: QueueClockEstimate]>([:])
    public let logger: Logger
    private let roots = Mutex<[String: LevelRoot]>([:])
    /// The looks at the level directories, each level's on a queue of its own and waited for at
    /// most their patience: a disk that does not answer holds up no request.
    public let disks: DiskLooks
    private let statsCache = Mutex<(stats: QueueStats, at: ContinuousClock.Instant)?>(nil)
    /// Answers kept briefly for pages that many readers ask for at once (the placement page's plan).
    public let recent = RecentAnswers()
    /// What the queue's server was last seen as, checked at most once a second.
    let queueIdentity = Mutex<(value: String?, checked: ContinuousClock.Instant?)>((nil, nil))
    /// The content reads of submissions that miss `contents`, batched.
    let contentReads = ContentReads<Content>()

    public init(queue: any QueueGateway, store: any StoreGateway, levels: LevelCache = LevelCache(), contents: ContentCache = ContentCache(),
                jobTTL: Duration = .seconds(86400), directories: LevelDirectories? = nil, halfLife: Duration? = nil, logger: Logger,
                clock: @escaping @Sendable () -> Int64 = WallClock.milliseconds,
                monotonic: @escaping @Sendable () -> Int64 = MonotonicClock.milliseconds, disks: DiskLooks = DiskLooks()) {
        self.queue = queue
        self.disks = disks
        self.store = store
        self.levels = levels
        self.contents = contents
        self.jobTTL = jobTTL
        self.directories = directories
        self.halfLife = halfLife
        self.logger = logger
        self.clock = clock
        self.monotonic = monotonic
    }

    /// Closes the queue's and the store's connections.
    public func close() {
        queue.close()
        store.close()
    }

    // MARK: - The level table and policies

    /// The level table (cached for a few seconds).
    public func levelTable() async throws -> LevelTable {
        try await levels.table { try await self.store.withStore { try $0.levels() } }
    }

    /// The level table with the level policies (both cached for a few seconds).
    public func placement() async throws -> Placement {
        let table = try await levelTable()
        let policies = try await levels.policies { try await self.store.withStore { try $0.policies() } }
        return Placement(table: table, policies: policies)
    }

    /// What a submission tells the queue of the policies.
    func countPolicy(_ placement: Placement) -> CountPolicy {
        var residencies: [String: Duration] = [:]
        for (level, policy) in placement.policies { if let seconds = policy.minResidency, seconds > 0 { residencies[level] = .seconds(seconds) } }
        return CountPolicy(halfLife: halfLife, residencies: residencies)
    }

    /// A level the table has, or `unknown_level`.
    func requireLevel(_ level: String) async throws {
        let names = try await levelTable().ranges.map(\.name)  // in the table's order
        guard names.contains(level) else { throw Self.unknownLevel(level, in: names) }
    }

    // MARK: - Reads

    /// A content's job as stored, with when a retrying one is due; nil when it has none. A hash
    /// that cannot be read as a job is an error that names the field.
    public func job(cid: Int64) async throws -> (job: Job, nextRetryAt: Int64?)? {
        let read = try await queue.withSession { session -> (Result<Job, Job.DecodingError>, Int64?)? in
            guard let read = try session.readJob(cid: cid) else { return nil }
            guard case .success(let job) = read, job.status == .retrying else { return (read, nil) }
            return (read, try session.retryDue(JobID(cid: cid, gen: job.gen)))
        }
        guard let (result, due) = read else { return nil }
        switch result {
        case .success(let job): return (job, due)
        case .failure(let problem): throw AppError(.unprocessable, "unreadable_job", "the job of cid \(cid) cannot be read: \(problem)")
        }
    }

    /// A content's row; `unknown_cid` when there is none.
    public func content(cid: Int64) async throws -> Content {
        guard let content = try await store.withStore({ try $0.content(cid: cid) }) else { throw AppError.unknownContent(cid) }
        return content
    }

    /// The queue's statistics for the level table's levels; a reading younger than `maxAge` is
    /// reused (the metrics and the dashboard read at most once a second).
    public func stats(maxAge: Duration = .zero) async throws -> QueueStats {
        if maxAge > .zero, let cached = statsCache.withLock({ $0 }), ContinuousClock.now - cached.at < maxAge {
            return cached.stats
        }
        let names = try await levelTable().ranges.map(\.name)  // in the table's order
        let stats = try await queue.withSession { try $0.stats(levels: names) }
        statsCache.withLock { $0 = (stats, .now) }
        return stats
    }

    /// Every move the live workers hold, with its job.
    public func movesInFlight(workers: [String]) async throws -> [HeldMove] {
        try await queue.withSession { session in
            try session.movesInFlight(workers: workers).map { HeldMove(worker: $0.worker, id: $0.id, job: $0.job) }
        }
    }

    // MARK: - Control

    /// Replays or purges dead letters (those of `cids`, or all).
    /// `who` is named in a replayed job's `queued_by`.
    public func dead(_ action: DeadAction, cids: [Int64]?, by who: String) async throws -> [(id: String, outcome: DeadOutcome)] {
        let results = try await queue.withSession(replicated: true) { session -> [(id: String, outcome: DeadOutcome)] in
            guard case .dead(let outcomes) = try session.control(.dead(action, cids: cids, by: who)) else { return [] }
            return outcomes
        }
        statsCache.withLock { $0 = nil }
        return results
    }

    /// Pauses or resumes a level of the level table; an unknown level is `unknown_level`. A pause
    /// holds when this returns: no worker starts a move into the level from then on.
    public func setPaused(_ paused: Bool, level: String) async throws {
        try await requireLevel(level)
        _ = try await queue.withSession(replicated: true) { try $0.control(paused ? .pause(level: level) : .resume(level: level)) }
        statsCache.withLock { $0 = nil }
        logger.notice(paused ? "level paused" : "level resumed", metadata: ["level": "\(level)"])
    }

    // MARK: - Readiness

    /// Readiness: the queue answers and takes writes, and the store answers with every migration
    /// this binary knows applied.
    public func readiness() async -> Readiness {
        async let queueProblem = queue.problem()
        async let storeProblem: String? = {
            do {
                return try await store.withStore { try $0.schemaProblem() }
            } catch {
                return (error as? OutageDescribing)?.outage ?? "unreachable"
            }
        }()
        return await Readiness(redisProblem: queueProblem, databaseProblem: storeProblem)
    }

    // MARK: - Level directories

    /// What a look at a level directory found (`lookAtLevel`).
    enum LevelLook<T: Sendable> {
        /// The directory could not be opened here (a process without the disks, a directory it
        /// may not open): the workers check.
        case cannotOpen(any Error)
        case answered(Result<T, any Error>)
        /// The directory did not answer within the patience of `disks`.
        case notAnswering
    }

    /// Looks at `level`'s directory with `body`, on the level's queue of looks (`disks`); nil when
    /// this process has no directory for the level. The directory is opened once, and again when
    /// its path names another directory since (unmounted, remounted, replaced: `stillInPlace`):
    /// a look never reads a tree the level has left.
    func lookAtLevel<T: Sendable>(_ level: String, _ body: @escaping @Sendable (LevelRoot) throws -> T) async -> LevelLook<T>? {
        guard let place = directories?.place(of: level) else { return nil }
        let outcome = await disks.look(level) { [self] () throws -> Result<T, any Error> in
            let root: LevelRoot
            if let opened = roots.withLock({ $0[level] }), (try? opened.stillInPlace()) == true {
                root = opened
            } else {
                // (Looks at a level run one at a time on its queue: no other opens it meanwhile.)
                root = try LevelRoot(place)
                roots.withLock { $0[level] = root }
            }
            return Result { try body(root) }
        }
        switch outcome {
        case .notAnswering: return .notAnswering
        case .answered(.failure(let error)): return .cannotOpen(error)
        case .answered(.success(let result)): return .answered(result)
        }
    }

    /// Refuses a filename that passes through a symbolic link in its level directory, with the
    /// mover's own resolution (`LevelRoot.lookup`) on a blocking thread. True when the name was
    /// resolved without one; false when the check was inconclusive (no directory here, a
    /// permission or I/O error: the worker meets the same and decides).
    @discardableResult
    func checkPath(_ filename: Filename, on level: String, cid: Int64) async throws -> Bool {
        switch await lookAtLevel(level, { try $0.lookup(filename) }) {
        case nil:
            return false
        case .cannotOpen(let error):
            // A process without the disks (or with a directory it may not open) leaves the check to the workers.
            logger.debug("level directory not open here; the workers check the path", metadata: ["level": "\(level)", "error": "\(error)"])
            return false
        case .notAnswering:
            logger.debug("level directory not answering; the workers check the path", metadata: ["level": "\(level)", "job.cid": "\(cid)"])
            return false
        case .answered(.success):
            return true
        case .answered(.failure(let error as MoveError)) where error.kind == .unsafePath:
            throw AppError.invalidFilename("the filename of cid \(cid) passes through a symbolic link (\(error.message)); refused")
        case .answered(.failure(let error)):
            // Permissions, I/O: the worker meets the same and retries; nothing to refuse here.
            logger.debug("path check inconclusive", metadata: ["job.cid": "\(cid)", "error": "\(error)"])
            return false
        }
    }
}

/// A move a live worker holds: the worker, the job's id and the job (nil when its hash is gone).
public struct HeldMove: Sendable {
    public var worker: String
    public var id: String
    public var job: Job?

    public init(worker: String, id: String, job: Job?) {
        self.worker = worker
        self.id = id
        self.job = job
    }
}

/// Readiness (`/readyz`): "ok", or what is missing and what to do.
public struct Readiness: Encodable, Sendable, Equatable {
    /// Nil when the queue answers; otherwise why not.
    public var redisProblem: String?
    /// Nil when the store answers with every table at this binary's version; otherwise why not.
    public var databaseProblem: String?

    public init(redisProblem: String?, databaseProblem: String?) {
        self.redisProblem = redisProblem
        self.databaseProblem = databaseProblem
    }

    public var isReady: Bool { redisProblem == nil && databaseProblem == nil }

    /// One line for the log: `ready` or the problems.
    public var summary: String {
        isReady ? "ready: Redis answers and the database schema is current"
            : "not ready: " + [redisProblem.map { "redis: \($0)" }, databaseProblem.map { "database: \($0)" }].compactMap { $0 }.joined(separator: "; ")
    }

    enum CodingKeys: String, CodingKey { case status, redis, database }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(isReady ? "ready" : "unavailable", forKey: .status)
        try c.encode(redisProblem ?? "ok", forKey: .redis)
        try c.encode(databaseProblem ?? "ok", forKey: .database)
    }
}
