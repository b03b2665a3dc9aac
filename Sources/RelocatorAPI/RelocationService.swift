import FileMover
import Foundation
import JobQueue
import Logging
import RedisClient
import RelocatorCore
import SQLStore
import Synchronization

/// What the API and the command line do: turn a content's new count into a job, and answer about
/// contents, jobs, queues, workers and dead letters. Every blocking call goes through the pools
/// (which run on `BlockingExecutor.shared`).
public final class RelocationService: Sendable {
    public let redis: RedisPool
    /// Submissions of concurrent requests share pipelined round trips through this.
    public let pipeliner: RedisPipeliner
    /// The Redis server as error messages name it (built once, not per request).
    let redisAddress: String
    public let sql: SQLPool
    public let queue: JobQueue
    public let levels: LevelCache
    public let contents: ContentCache
    /// How long a committed job's hash stays readable.
    public let jobTTL: Duration
    /// The level directories, when this process can see them: a filename that passes through a
    /// symbolic link there is refused at once (workers refuse it again when they open it), and
    /// `why` says where the file really is.
    public let directories: LevelDirectories?
    /// Moves per minute over the last hour, for the dashboard.
    public let moveRate = MoveRate()
    let logger: Logger
    private let roots = Mutex<[String: LevelRoot]>([:])
    private let statsCache = Mutex<(stats: QueueStats, at: ContinuousClock.Instant)?>(nil)

    /// The half-life of hit counters (`RELOCATOR_HALF_LIFE`), when counts decay.
    public let halfLife: Duration?
    /// This process's clock (ms since 1970); tests give one that jumps.
    public let clock: @Sendable () -> Int64
    /// What Redis was last seen as (its run id, or a cluster's epoch), checked at most once a second.
    private let redisEpoch = Mutex<(value: String?, checked: ContinuousClock.Instant?)>((nil, nil))

    public init(redis: RedisPool, sql: SQLPool, queue: JobQueue, levels: LevelCache = LevelCache(),
                contents: ContentCache = ContentCache(), jobTTL: Duration = .seconds(86400),
                directories: LevelDirectories? = nil, halfLife: Duration? = nil, logger: Logger,
                clock: @escaping @Sendable () -> Int64 = JobQueue.nowMilliseconds) {
        self.halfLife = halfLife
        self.clock = clock
        self.contents = contents
        self.pipeliner = RedisPipeliner(url: redis.url, replication: redis.replication)
        redisAddress = redis.url.address
        self.directories = directories
        self.redis = redis
        self.sql = sql
        self.queue = queue
        self.levels = levels
        self.jobTTL = jobTTL
        self.logger = logger
    }

    /// Closes the pools and the pipeliner.
    public func close() {
        pipeliner.close()
        redis.close()
        sql.close()
    }

    public struct Submitted: Sendable {
        public var content: Content
        public var count: Int64
        public var target: String
        public var submission: JobQueue.Submission
    }

    /// The level table (cached for a few seconds).
    public func levelTable() async throws -> LevelTable {
        try await levels.table { try await self.sql.withDatabase { try LevelStore(database: $0).levels() } }
    }

    /// The level table with the level policies (both cached for a few seconds).
    public func placement() async throws -> Placement {
        let table = try await levelTable()
        let policies = try await levels.policies { try await self.sql.withDatabase { try LevelStore(database: $0).policies() } }
        return Placement(table: table, policies: policies)
    }

    /// What a submission tells the enqueue script of the policies.
    func countPolicy(_ placement: Placement) -> JobQueue.CountPolicy {
        var residencies: [String: Duration] = [:]
        for (level, policy) in placement.policies { if let seconds = policy.minResidency, seconds > 0 { residencies[level] = .seconds(seconds) } }
        return JobQueue.CountPolicy(halfLife: halfLife, residencies: residencies)
    }

    /// Hits for a content (`POST /v1/contents/{cid}/hits`): its counter decays by half every
    /// half-life; its value now drives placement as a posted count does.
    public func hit(cid: Int64, hits: Int64) async throws -> (value: Double, submitted: Submitted) {
        guard let halfLife else {
            throw APIError(.unavailable, "hit counting needs RELOCATOR_HALF_LIFE (e.g. 24h) on the API")
        }
        guard hits >= 0 else { throw APIError.badRequest(FormRules.rangeMessage("n", minimum: 0, got: String(hits))) }
        if contents.content(cid) == nil {
            guard try await sql.withDatabase({ try ContentStore(database: $0).content(cid: cid) }) != nil else {
                throw APIError.unknownContent(cid)
            }
        }
        let queue = self.queue
        let counter = try await redis.withConnection { redis in
            try redis.replicated { try queue.hit(cid: cid, hits: Double(hits), halfLife: halfLife, on: redis) }
        }
        // Within the range of a count whatever Redis held (hit.lua keeps it there too).
        let value = counter.isNaN ? 0 : min(max(counter, 0), Double(CountBound.max))
        return (value, try await submit(cid: cid, count: CountBound.clamped(value)))
    }

    /// Forgets the cached contents when Redis is not the one it was (a restart or a failover may
    /// have lost what it knew of recent moves, which the cache relies on). At most once a second.
    func checkRedisEpoch() async {
        let due = redisEpoch.withLock { state -> Bool in
            if let checked = state.checked, ContinuousClock.now - checked < .seconds(1) { return false }
            state.checked = .now
            return true
        }
        guard due else { return }
        let cluster = redis.url.topology == .cluster
        let epoch: String?
        do {
            let reply = try await redis.send(cluster ? RedisCommand("CLUSTER", "INFO") : RedisCommand("INFO", "server"))
            let key = cluster ? "cluster_current_epoch:" : "run_id:"
            epoch = reply.string?.split(whereSeparator: \.isNewline).first { $0.hasPrefix(key) }.map(String.init)
        } catch {
            // Unreachable now: whatever answers next may be another server.
            epoch = "unreachable"
        }
        let changed = redisEpoch.withLock { state -> Bool in
            defer { state.value = epoch }
            return state.value != nil && state.value != epoch
        }
        if changed {
            contents.clear()
            logger.notice("Redis restarted or failed over: the content cache is emptied")
        }
    }

    /// A new view count for a content: the level it falls in, and a job unless it is already there.
    public func submit(cid: Int64, count: Int64) async throws -> Submitted {
        await checkRedisEpoch()
        guard cid > 0 else { throw APIError.badRequest("cid must be a positive whole number, got \(cid)") }
        guard CountBound.range.contains(count) else {
            throw APIError.badRequest(FormRules.rangeMessage("count", minimum: 0, maximum: CountBound.max, got: String(count)))
        }
        var cached = contents.entry(cid)
        if cached == nil {
            let readAt = clock()
            if let found = try await sql.withDatabase({ try ContentStore(database: $0).content(cid: cid) }) {
                var entry = ContentCache.Entry(content: found, readAt: readAt)
                contents.store(entry)
                // Just read: that read stands.
                entry.readAt = JobQueue.freshRead
                cached = entry
            }
        }
        guard let entry = cached else { throw APIError.unknownContent(cid) }
        var content = entry.content
        let readAt = entry.readAt
        // True once the content's level was read from the database for this count: it stands.
        var readNow = readAt == JobQueue.freshRead
        let filename: Filename
        switch entry.filename {
        case .success(let checked): filename = checked
        case .failure(let invalid as Filename.Invalid):
            throw APIError(.invalidFilename, "the filename of cid \(cid) cannot be moved safely: \(invalid.reason)")
        case .failure(let error): throw error
        }
        try await checkPath(filename, on: content.level, cid: cid)
        let placement = try await placement()
        guard var choice = placement.target(count: count, current: content.level) else {
            throw APIError(.noLevel, "no level holds the count \(count); check the level table")
        }
        if let raised = choice.raiseMaxCounts {
            let raisedLevel = choice.level
            let result = try await sql.withDatabase { try LevelStore(database: $0).raiseMaxCounts(level: raisedLevel, to: raised) }
            levels.raise(level: choice.level, to: raised)
            if result.changed {
                logger.notice("raised max_counts", metadata: [
                    "level": "\(choice.level)", "level.previous_max_counts": "\(result.previous.map(String.init) ?? "none")",
                    "level.max_counts": "\(raised)", "job.cid": "\(cid)",
                ])
            }
        }
        let policy = countPolicy(placement)
        let reply = try await pipeliner.call(queue.submitCall(cid: cid, count: count, filename: content.filename,
                                                              dbLevel: content.level, target: choice.level, readAt: readAt, policy: policy))
        var submission = try queue.submission(from: reply, address: redisAddress)
        if submission.outcome == .staleLevel {
            // The content changed level since it was cached: read it again; that read stands.
            let readAt = clock()
            guard let fresh = try await sql.withDatabase({ try ContentStore(database: $0).content(cid: cid) }) else {
                throw APIError.unknownContent(cid)
            }
            contents.store(fresh, readAt: readAt)
            content = fresh
            readNow = true
            // Hysteresis depends on the level the content is on: decide again from the fresh one.
            if let fresher = placement.target(count: count, current: fresh.level) { choice = fresher }
            let again = try await pipeliner.call(queue.submitCall(cid: cid, count: count, filename: fresh.filename, dbLevel: fresh.level,
                                                                  target: choice.level, readAt: JobQueue.freshRead, policy: policy))
            submission = try queue.submission(from: again, address: redisAddress)
        }
        // Where the queue says the file is: its job's origin, or this count's level when the count
        // found the file already there.
        let known = [.inPlace, .dropped].contains(submission.outcome) ? choice.level : submission.job?.dbLevel
        if !readNow, let known, known != content.level {
            // The cached level is behind a move committed since it was read: the script kept the
            // count off the level the content is on (its residents' score, the job's count). Read
            // the content again and submit once more from there, so that placement, the residents'
            // scores and `why` have this count; hysteresis decides from the level it is on.
            let readAt = clock()
            guard let fresh = try await sql.withDatabase({ try ContentStore(database: $0).content(cid: cid) }) else {
                throw APIError.unknownContent(cid)
            }
            contents.store(fresh, readAt: readAt)
            content = fresh
            if let fresher = placement.target(count: count, current: fresh.level) { choice = fresher }
            let again = try await pipeliner.call(queue.submitCall(cid: cid, count: count, filename: fresh.filename, dbLevel: fresh.level,
                                                                  target: choice.level, readAt: JobQueue.freshRead, policy: policy))
            submission = try queue.submission(from: again, address: redisAddress)
        }
        logger.debug("submitted", metadata: ["job.cid": "\(cid)", "job.target": "\(choice.level)", "job.outcome": "\(submission.outcome.rawValue)"])
        return Submitted(content: content, count: count, target: choice.level, submission: submission)
    }

    /// The level's open directory, when this process has the level's directory and can open it.
    func root(of level: String) -> LevelRoot? {
        guard let place = directories?.place(of: level) else { return nil }
        if let root = roots.withLock({ $0[level] }) { return root }
        do {
            let root = try LevelRoot(place)
            roots.withLock { $0[level] = root }
            return root
        } catch {
            // An API without the disks (or with a directory it may not open) leaves the check to the workers.
            logger.debug("level directory not open here; the workers check the path", metadata: ["level": "\(level)", "error": "\(error)"])
            return nil
        }
    }

    /// Refuses a filename that passes through a symbolic link in its level directory, with the
    /// mover's own resolution (`LevelRoot.lookup`) on a blocking thread.
    func checkPath(_ filename: Filename, on level: String, cid: Int64) async throws {
        guard let root = root(of: level) else { return }
        do {
            _ = try await BlockingExecutor.shared.run { try root.lookup(filename) }
        } catch let error as MoveError where error.kind == .unsafePath {
            throw APIError(.invalidFilename, "the filename of cid \(cid) passes through a symbolic link (\(error.message)); refused")
        } catch let error as MoveError {
            // Permissions, I/O: the worker meets the same and retries; nothing to refuse here.
            logger.debug("path check inconclusive", metadata: ["job.cid": "\(cid)", "error": "\(error)"])
        }
    }

    /// Many counts at once (`relocator enqueue --file`): one SQL query per 1,000 contents and one
    /// Redis pipeline per 1,000 submissions. Returns how many of each outcome; a cid that is unknown,
    /// has an unsafe filename or a count no level holds is reported and skipped.
    public func submitMany(_ counts: [(cid: Int64, count: Int64)]) async throws -> (outcomes: [String: Int], skipped: [String]) {
        let cids = counts.map(\.cid)
        let contents = try await sql.withDatabase { try ContentStore(database: $0).contents(cids: cids) }
        let placement = try await placement()
        let policy = countPolicy(placement)
        var skipped: [String] = []
        var items: [(cid: Int64, count: Int64, filename: String, dbLevel: String, target: String)] = []
        var raises: [String: Int64] = [:]
        for (cid, count) in counts {
            guard let content = contents[cid] else { skipped.append("cid \(cid): no such content"); continue }
            do {
                _ = try Filename(content.filename)
            } catch {
                skipped.append("cid \(cid): unsafe filename (\(error))")
                continue
            }
            guard CountBound.range.contains(count) else {
                skipped.append("cid \(cid): \(FormRules.rangeMessage("count", minimum: 0, maximum: CountBound.max, got: String(count)))")
                continue
            }
            guard let choice = placement.target(count: count, current: content.level) else {
                skipped.append("cid \(cid): no level holds \(count)")
                continue
            }
            if let raised = choice.raiseMaxCounts { raises[choice.level] = max(raises[choice.level] ?? 0, raised) }
            items.append((cid, count, content.filename, content.level, choice.level))
        }
        for (level, count) in raises {
            let result = try await sql.withDatabase { try LevelStore(database: $0).raiseMaxCounts(level: level, to: count) }
            levels.raise(level: level, to: count)
            if result.changed {
                logger.notice("raised max_counts", metadata: [
                    "level": "\(level)", "level.previous_max_counts": "\(result.previous.map(String.init) ?? "none")", "level.max_counts": "\(count)",
                ])
            }
        }
        var outcomes: [String: Int] = [:]
        let queue = self.queue
        for chunk in items.chunks(of: 1000) {
            let batch = Array(chunk)
            let submissions = try await redis.withConnection { redis in
                try redis.replicated { try queue.submitMany(batch, readAt: JobQueue.freshRead, policy: policy, on: redis) }
            }
            for submission in submissions { outcomes[submission.outcome.rawValue, default: 0] += 1 }
        }
        return (outcomes, skipped)
    }

    /// The original `/update_sentence`: true when the job is committed (a done job is committed
    /// now, idempotently — the committer may write the same row again without harm). A job in any
    /// other state, a dead one too, is not.
    public func commitIfDone(cid: Int64) async throws -> Bool {
        let queue = self.queue
        guard let job = try await redis.withConnection({ try queue.job(cid: cid, on: $0) }) else { return false }
        switch job.status {
        case .committed: return true
        case .done:
            let entry = CommitEntry(job)
            try await sql.withDatabase { try ContentStore(database: $0).commit([entry]) }
            let ttl = jobTTL
            let levels = try await levelTable().ranges.map(\.name)
            let shard = queue.keys.shardIndex(of: cid)
            _ = try await redis.withConnection { redis in
                try redis.replicated { try queue.markCommitted(ids: [job.id], shard: shard, committer: nil, ttl: ttl, levels: levels, on: redis) }
            }
            return true
        case .queued, .moving, .retrying, .deferred, .dead: return false
        }
    }

    /// A content's row and its job.
    public func content(cid: Int64) async throws -> ContentView {
        guard let content = try await sql.withDatabase({ try ContentStore(database: $0).content(cid: cid) }) else {
            throw APIError.unknownContent(cid)
        }
        return ContentView(content: content, job: try await jobView(cid: cid))
    }

    /// A content's job as `/v1/jobs` shows it; nil when it has none. A hash that cannot be read as
    /// a job (a field missing or malformed) is an error that names the field.
    public func jobView(cid: Int64) async throws -> JobView? {
        let queue = self.queue
        let (fields, due) = try await redis.withConnection { redis -> ([String: String], Int64?) in
            let fields = try queue.fields(cid: cid, on: redis)
            guard fields[JobField.status.rawValue] == JobStatus.retrying.rawValue,
                  let gen = fields[JobField.gen.rawValue].flatMap({ Int64($0) }) else { return (fields, nil) }
            return (fields, try queue.retryDue(JobID(cid: cid, gen: gen), on: redis))
        }
        if fields.isEmpty { return nil }
        switch Job.decode(fields) {
        case .success(let job): return JobView(job, nextRetryAt: Timestamp(milliseconds: due))
        case .failure(let problem):
            throw APIError(APIError.Code("unreadable_job", .unprocessableContent), "the job of cid \(cid) cannot be read: \(problem)")
        }
    }

    /// The queue's statistics for the level table's levels; a reading younger than `maxAge` is
    /// reused (the metrics and the dashboard read at most once a second).
    public func stats(maxAge: Duration = .zero) async throws -> QueueStats {
        if maxAge > .zero, let cached = statsCache.withLock({ $0 }), ContinuousClock.now - cached.at < maxAge {
            return cached.stats
        }
        let names = try await levelTable().ranges.map(\.name)
        let queue = self.queue
        let stats = try await redis.withConnection { try queue.stats(levels: names, on: $0) }
        statsCache.withLock { $0 = (stats, .now) }
        moveRate.record(moved: stats.totals[.moved] ?? 0, at: clock())
        return stats
    }

    public func deadJobs() async throws -> [JobQueue.DeadJob] {
        let queue = self.queue
        return try await redis.withConnection { try queue.deadJobs(on: $0) }
    }

    public func dead(_ action: JobQueue.DeadAction, cids: [Int64]?) async throws -> [(id: String, outcome: JobQueue.DeadOutcome)] {
        let queue = self.queue
        let results = try await redis.withConnection { redis in try redis.replicated { try queue.dead(action, cids: cids, on: redis) } }
        statsCache.withLock { $0 = nil }
        return results
    }

    /// Every move the live workers hold, with its job.
    public func movesInFlight(workers: [String]) async throws -> [JobQueue.HeldMove] {
        let queue = self.queue
        return try await redis.withConnection { try queue.heldMoves(workers: workers, on: $0) }
    }

    /// Pauses or resumes a level of the level table; an unknown level is a 404. A pause holds
    /// when this returns: no worker starts a move into the level from then on.
    public func setPaused(_ paused: Bool, level: String) async throws {
        guard try await levelTable().ranges.contains(where: { $0.name == level }) else {
            throw APIError(.unknownLevel, "no level '\(level.prefix(64))' in the level table")
        }
        let queue = self.queue
        // In force when this returns: every shard's take and claim scripts read the pause.
        try await redis.withConnection { redis in
            try redis.replicated { paused ? try queue.pause(level: level, on: redis) : try queue.resume(level: level, on: redis) }
        }
        statsCache.withLock { $0 = nil }
        logger.notice(paused ? "level paused" : "level resumed", metadata: ["level": "\(level)"])
    }

    /// The latest relocations, of one content when `cid` is given.
    public func relocations(cid: Int64?, limit: Int) async throws -> [Relocation] {
        try await sql.withDatabase { try ContentStore(database: $0).relocations(cid: cid, limit: limit) }
    }

    /// Readiness: Redis answers PING and takes writes (not over its `maxmemory`, not a replica…),
    /// and the database answers with every migration this binary knows applied.
    public func readiness() async -> Readiness {
        let queue = self.queue
        async let redisProblem: String? = {
            do {
                let reply = try await redis.send("PING")
                guard reply == .status("PONG") else { return "unexpected answer to PING" }
            } catch {
                return "unreachable (\(APIError.from(error)?.message ?? "no answer"))"
            }
            do {
                try await redis.withConnection { try queue.checkWritable(on: $0) }
                return nil
            } catch let error as RedisError where error.code == .server {
                return "refuses writes (\(error.message.prefix(120)))"
            } catch {
                return "unreachable (\(APIError.from(error)?.message ?? "no answer"))"
            }
        }()
        async let databaseProblem: String? = {
            do {
                let status = try await sql.withDatabase {
                    try Migrator(database: $0, migrations: Migration.embedded(dialect: $0.dialect)).status()
                }
                return Self.schemaProblem(status)
            } catch {
                return APIError.from(error)?.message ?? "unreachable"
            }
        }()
        return await Readiness(redisProblem: redisProblem, databaseProblem: databaseProblem)
    }

    /// Nil when the schema holds every migration this binary knows; otherwise what to do.
    /// `schema at 0002, this binary needs 0005: run relocator migrate`.
    static func schemaProblem(_ status: MigrationStatus) -> String? {
        if status.isCurrent { return nil }
        guard status.schemaPresent else { return "no schema: run relocator migrate" }
        let have = status.applied.last.map { String($0.prefix(4)) } ?? "no version"
        let need = status.latestKnown.map { String($0.prefix(4)) } ?? "none"
        return "schema at \(have), this binary needs \(need): run relocator migrate"
    }
}
