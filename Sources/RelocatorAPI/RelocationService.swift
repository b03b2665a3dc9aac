import JobQueue
import Dispatch
import Foundation
import Logging
import RedisClient
import RelocatorCore
import SQLStore

/// What the API and the `enqueue` command do: turn a content's new count into a job, and answer
/// about contents, jobs, queues and dead letters. Every blocking call goes through the pools.
public final class RelocationService: Sendable {
    public let redis: RedisPool
    /// Submissions of concurrent requests share pipelined round trips through this.
    public let pipeliner: RedisPipeliner
    public let sql: SQLPool
    public let queue: JobQueue
    public let levels: LevelCache
    public let contents: ContentCache
    /// How long a committed job's hash stays readable.
    public let jobTTL: Duration
    /// The level directories, when this process can see them: a filename that is a symlink there
    /// is refused at once (workers refuse it again when they open it).
    public let directories: LevelDirectories?
    let logger: Logger

    public init(redis: RedisPool, sql: SQLPool, queue: JobQueue, levels: LevelCache = LevelCache(),
                contents: ContentCache = ContentCache(), jobTTL: Duration = .seconds(86400),
                directories: LevelDirectories? = nil, logger: Logger) {
        self.contents = contents
        self.pipeliner = RedisPipeliner(url: redis.url)
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

    /// A new view count for a content: the level it falls in, and a job unless it is already there.
    public func submit(cid: Int64, count: Int64) async throws -> Submitted {
        guard cid > 0 else { throw ServiceError.badRequest("cid must be a positive whole number, got \(cid)") }
        guard count >= 0 else { throw ServiceError.badRequest("count must be a whole number ≥ 0, got \(count)") }
        var cached = contents.content(cid)
        if cached == nil {
            let readAt = JobQueue.nowMilliseconds()
            if let found = try await sql.withDatabase({ try ContentStore(database: $0).content(cid: cid) }) {
                contents.store(found, readAt: readAt)
                cached = (found, JobQueue.freshRead)
            }
        }
        guard let (cachedContent, readAt) = cached else { throw ServiceError.unknownContent(cid) }
        var content = cachedContent
        do {
            _ = try Filename(content.filename)
        } catch let invalid as Filename.Invalid {
            throw ServiceError.unprocessable("invalid_filename", "the filename of cid \(cid) cannot be moved safely: \(invalid.reason)")
        }
        if let directory = directories?.directory(of: content.level), let link = await Self.symlink(in: directory, content.filename) {
            throw ServiceError.unprocessable("invalid_filename", "the filename of cid \(cid) passes through a symbolic link (\(link)); refused")
        }
        let table = try await levels.table { try await self.sql.withDatabase { try LevelStore(database: $0).levels() } }
        guard let choice = table.choose(count: count) else {
            throw ServiceError.unprocessable("no_level", "no level holds the count \(count); check the level table")
        }
        if let raised = choice.raiseMaxCounts {
            try await sql.withDatabase { try ContentStore(database: $0).raiseMaxCounts(level: choice.level, to: raised) }
            levels.raise(level: choice.level, to: raised)
            logger.info("raised max_counts", metadata: ["level": "\(choice.level)", "level.max_counts": "\(raised)"])
        }
        let reply = try await pipeliner.call(queue.submitCall(cid: cid, count: count, filename: content.filename,
                                                              dbLevel: content.level, target: choice.level, readAt: readAt))
        var submission = try queue.submission(from: reply, address: redis.url.address)
        if submission.outcome == .staleLevel {
            // The content changed level since it was cached: read it again; that read stands.
            let readAt = JobQueue.nowMilliseconds()
            guard let fresh = try await sql.withDatabase({ try ContentStore(database: $0).content(cid: cid) }) else {
                throw ServiceError.unknownContent(cid)
            }
            contents.store(fresh, readAt: readAt)
            content = fresh
            let again = try await pipeliner.call(queue.submitCall(cid: cid, count: count, filename: fresh.filename, dbLevel: fresh.level,
                                                                  target: choice.level, readAt: JobQueue.freshRead))
            submission = try queue.submission(from: again, address: redis.url.address)
        }
        logger.debug("submitted", metadata: ["job.cid": "\(cid)", "job.target": "\(choice.level)", "job.outcome": "\(submission.outcome.rawValue)"])
        return Submitted(content: content, count: count, target: choice.level, submission: submission)
    }

    /// The first component of `directory/relative` that is a symbolic link, if any (lstat on a
    /// Dispatch thread: a slow disk must not hold up the caller's thread).
    static func symlink(in directory: String, _ relative: String) async -> String? {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                var path = directory
                var found: String?
                for component in relative.split(separator: "/") {
                    path += "/" + component
                    var info = stat()
                    if lstat(path, &info) != 0 { break }
                    if (info.st_mode & S_IFMT) == S_IFLNK {
                        found = String(path.dropFirst(directory.count + 1))
                        break
                    }
                }
                continuation.resume(returning: found)
            }
        }
    }

    /// Many counts at once (`relocator enqueue --file`): one SQL query per 1,000 contents and one
    /// Redis pipeline per 1,000 submissions. Returns how many of each outcome; a cid that is unknown,
    /// has an unsafe filename or a count no level holds is reported and skipped.
    public func submitMany(_ counts: [(cid: Int64, count: Int64)]) async throws -> (outcomes: [String: Int], skipped: [String]) {
        let cids = counts.map(\.cid)
        let contents = try await sql.withDatabase { try ContentStore(database: $0).contents(cids: cids) }
        let table = try await levels.table { try await self.sql.withDatabase { try LevelStore(database: $0).levels() } }
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
            guard count >= 0, let choice = table.choose(count: count) else { skipped.append("cid \(cid): no level holds \(count)"); continue }
            if let raised = choice.raiseMaxCounts { raises[choice.level] = max(raises[choice.level] ?? 0, raised) }
            items.append((cid, count, content.filename, content.level, choice.level))
        }
        for (level, count) in raises {
            try await sql.withDatabase { try ContentStore(database: $0).raiseMaxCounts(level: level, to: count) }
            levels.raise(level: level, to: count)
        }
        var outcomes: [String: Int] = [:]
        let queue = self.queue
        var start = 0
        while start < items.count {
            let chunk = Array(items[start..<min(start + 1000, items.count)])
            start += chunk.count
            let submissions = try await redis.withConnection { try queue.submitMany(chunk, readAt: JobQueue.freshRead, on: $0) }
            for submission in submissions { outcomes[submission.outcome.rawValue, default: 0] += 1 }
        }
        return (outcomes, skipped)
    }

    /// The original `/update_sentence`: true when the job is committed (a done job is committed
    /// now, idempotently — the committer may write the same row again without harm).
    public func commitIfDone(cid: Int64) async throws -> Bool {
        let queue = self.queue
        guard let job = try await redis.withConnection({ try queue.job(cid: cid, on: $0) }) else { return false }
        switch job.status {
        case .committed: return true
        case .done:
            let entry = CommitEntry(job)
            try await sql.withDatabase { try ContentStore(database: $0).commit([entry]) }
            let ttl = jobTTL
            let levels = try await levels.table { try await self.sql.withDatabase { try LevelStore(database: $0).levels() } }.ranges.map(\.name)
            let shard = queue.keys.shardIndex(of: cid)
            _ = try await redis.withConnection {
                try queue.markCommitted(ids: [job.id], shard: shard, committer: nil, ttl: ttl, levels: levels, on: $0)
            }
            return true
        default: return false
        }
    }

    public func content(cid: Int64) async throws -> (Content, [String: String]) {
        guard let content = try await sql.withDatabase({ try ContentStore(database: $0).content(cid: cid) }) else {
            throw ServiceError.unknownContent(cid)
        }
        let queue = self.queue
        let fields = try await redis.withConnection { try queue.fields(cid: cid, on: $0) }
        return (content, fields)
    }

    public func jobFields(cid: Int64) async throws -> [String: String] {
        let queue = self.queue
        let fields = try await redis.withConnection { try queue.fields(cid: cid, on: $0) }
        guard !fields.isEmpty else { throw ServiceError.noJob(cid) }
        return fields
    }

    public func stats() async throws -> QueueStats {
        let table = try await levels.table { try await self.sql.withDatabase { try LevelStore(database: $0).levels() } }
        let names = table.ranges.map(\.name)
        let queue = self.queue
        return try await redis.withConnection { try queue.stats(levels: names, on: $0) }
    }

    public func deadJobs() async throws -> [JobQueue.DeadJob] {
        let queue = self.queue
        return try await redis.withConnection { try queue.deadJobs(on: $0) }
    }

    public func dead(_ action: JobQueue.DeadAction, cids: [Int64]?) async throws -> [(id: String, outcome: JobQueue.DeadOutcome)] {
        let queue = self.queue
        return try await redis.withConnection { try queue.dead(action, cids: cids, on: $0) }
    }

    /// Readiness: Redis answers PING and the database a trivial query.
    public func readiness() async -> (redis: Bool, database: Bool) {
        async let redisOK = (try? await redis.send("PING")) == .status("PONG")
        async let sqlOK = (try? await sql.withDatabase { try $0.query("SELECT 1 AS one").count }) == 1
        return await (redisOK, sqlOK)
    }
}
