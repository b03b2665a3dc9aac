#if canImport(Glibc)
import Glibc
#endif
import RedisClient
import RelocatorCore

/// The reliable queue of DESIGN.md over Redis lists. Every method is one round trip (a Lua script or a
/// single command) on a connection the caller owns; the API calls them through a `RedisPool`, workers
/// and committers on connections of their own.
public struct JobQueue: Sendable {
    public let keys: RedisKeys

    public init(keys: RedisKeys = RedisKeys()) {
        self.keys = keys
    }

    // MARK: - Submitting

    public enum SubmitOutcome: String, Sendable {
        /// A new job was queued.
        case created
        /// The job already aimed at this target; only the count changed.
        case updated
        /// A queued job got a new target (new gen, pushed on the new target's queue).
        case retargeted
        /// A move is in flight; a follow-up to the new target is enqueued after it commits.
        case followUp = "follow_up"
        /// The file is already on this level: nothing to do.
        case inPlace = "in_place"
        /// A queued job was dropped: the new target is where the file already is.
        case dropped
    }

    public struct Submission: Sendable {
        public var outcome: SubmitOutcome
        public var job: Job?
        public var fields: [String: String]
    }

    /// Creates, coalesces or drops the content's job (one Lua script). `readAt` is when `dbLevel`
    /// was read from the database (ms since 1970; default now): a job committed after that wins.
    public func submit(cid: Int64, count: Int64, filename: String, dbLevel: String, target: String,
                       readAt: Int64 = JobQueue.nowMilliseconds(), on redis: RedisConnection) throws -> Submission {
        let reply = try redis.evalScript(Scripts.enqueue, arguments: [keys.prefix, cid, count, filename, dbLevel, target, readAt])
        return try submission(from: reply, address: redis.url.address)
    }

    /// The same submission as a call for a `RedisPipeliner` (the API's hot path).
    public func submitCall(cid: Int64, count: Int64, filename: String, dbLevel: String, target: String, readAt: Int64) -> RedisCall {
        .script(Scripts.enqueue, keys: [], arguments: [keys.prefix, cid, count, filename, dbLevel, target, readAt])
    }

    public static func nowMilliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    /// Reads the enqueue script's reply.
    public func submission(from reply: RedisReply, address: String) throws -> Submission {
        guard let items = reply.array, items.count == 2, let word = items[0].string,
              let outcome = SubmitOutcome(rawValue: word)
        else {
            throw RedisError(code: .protocolViolation, address: address, command: "EVALSHA", message: "unexpected reply from the enqueue script")
        }
        let fields = items[1].hash ?? [:]
        return Submission(outcome: outcome, job: Job(hash: fields), fields: fields)
    }

    /// Many submissions in one pipeline (bulk `enqueue`): the same script as `submit`, per item.
    public func submitMany(_ items: [(cid: Int64, count: Int64, filename: String, dbLevel: String, target: String)],
                           readAt: Int64, on redis: RedisConnection) throws -> [Submission] {
        let replies = try redis.pipelineScript(Scripts.enqueue, calls: items.map {
            (keys: [], arguments: [keys.prefix, $0.cid, $0.count, $0.filename, $0.dbLevel, $0.target, readAt])
        })
        return try replies.map {
            try submission(from: $0.throwingServerError(address: redis.url.address, command: "EVALSHA"), address: redis.url.address)
        }
    }

    // MARK: - Reading

    /// The job hash of a content, as stored; empty when there is none.
    public func fields(cid: Int64, on redis: RedisConnection) throws -> [String: String] {
        try redis.send("HGETALL", keys.job(cid)).hash ?? [:]
    }

    public func job(cid: Int64, on redis: RedisConnection) throws -> Job? {
        Job(hash: try fields(cid: cid, on: redis))
    }

    public func stats(levels: [String], on redis: RedisConnection) throws -> QueueStats {
        let reply = try redis.evalScript(Scripts.stats, arguments: [keys.prefix] + levels)
        guard let items = reply.array, items.count == 8, let queues = items[0].array else { throw malformed(redis, "stats") }
        var depths: [(String, Int)] = []
        for entry in queues {
            guard let pair = entry.array, pair.count == 2, let level = pair[0].string, let depth = pair[1].int else {
                throw malformed(redis, "stats")
            }
            depths.append((level, depth))
        }
        let numbers = items[1...].map { $0.int ?? 0 }
        return QueueStats(queues: depths, processing: numbers[0], committing: numbers[1], retry: numbers[2],
                          dead: numbers[3], done: numbers[4], workers: numbers[5], aliveWorkers: numbers[6])
    }

    // MARK: - Workers

    /// Claims a job: `taken` is an id a BRPOPLPUSH already put in the processing list; then the
    /// queues of `levels`, in order. Nil when there is no work.
    public func fetch(worker: String, levels: [String], taken: String? = nil, on redis: RedisConnection) throws -> Job? {
        let reply = try redis.evalScript(Scripts.fetch, keys: [keys.processing(worker)],
                                         arguments: [keys.prefix, worker, taken ?? ""] + levels)
        if reply.isNull { return nil }
        guard let items = reply.array, items.count == 2, let fields = items[1].hash else { throw malformed(redis, "fetch") }
        guard let job = Job(hash: fields) else {
            throw RedisError(code: .protocolViolation, address: redis.url.address, command: "EVALSHA",
                             message: "job \(items[0].string ?? "?") has a malformed hash")
        }
        return job
    }

    /// Waits up to `timeout` for an id on one level's queue, moving it into the worker's
    /// processing list (BRPOPLPUSH). The id still has to be claimed with `fetch(taken:)`.
    public func waitForWork(worker: String, level: String, timeout: Duration, on redis: RedisConnection) throws -> String? {
        let seconds = max(1, Int((Double(timeout.milliseconds) / 1000).rounded(.up)))
        let reply = try redis.sendBlocking(
            RedisCommand("BRPOPLPUSH", keys.queue(level), keys.processing(worker), seconds), block: .seconds(seconds))
        return reply.string
    }

    /// The move is verified: the job goes to `done`. False when the job is no longer this worker's.
    @discardableResult
    public func ack(_ job: Job, worker: String, checksum: String, bytes: Int64, on redis: RedisConnection) throws -> Bool {
        let reply = try redis.evalScript(Scripts.ack, keys: [keys.processing(worker)],
                                         arguments: [keys.prefix, job.id, worker, checksum, bytes])
        return reply.int == 1
    }

    public enum FailOutcome: String, Sendable {
        case retrying, dead, dropped, stale
    }

    /// The move failed: schedule a retry after `delay`, or dead-letter it.
    @discardableResult
    public func fail(_ job: Job, worker: String, error: String, permanent: Bool, delay: Duration, maxAttempts: Int,
                     on redis: RedisConnection) throws -> FailOutcome {
        let reply = try redis.evalScript(Scripts.fail, keys: [keys.processing(worker)], arguments: [
            keys.prefix, job.id, worker, String(error.prefix(1000)), permanent ? "1" : "0", Int(delay.milliseconds), maxAttempts,
        ])
        guard let word = reply.string, let outcome = FailOutcome(rawValue: word) else { throw malformed(redis, "fail") }
        return outcome
    }

    /// Announces a worker (or committer) as alive for `ttl`.
    public func heartbeat(worker: String, ttl: Duration, on redis: RedisConnection) throws {
        let replies = try redis.pipeline([
            RedisCommand("SADD", keys.workers, worker),
            RedisCommand("SET", keys.heartbeat(worker), "alive", "PX", Int(ttl.milliseconds)),
        ])
        for reply in replies { _ = try reply.throwingServerError(address: redis.url.address, command: "HEARTBEAT") }
    }

    /// Says goodbye: the heartbeat and the membership go.
    public func unregister(worker: String, on redis: RedisConnection) throws {
        _ = try redis.pipeline([RedisCommand("DEL", keys.heartbeat(worker)), RedisCommand("SREM", keys.workers, worker)])
    }

    /// Moves due retries back to their queues; returns how many.
    @discardableResult
    public func promoteDueRetries(limit: Int = 1000, on redis: RedisConnection) throws -> Int {
        try redis.evalScript(Scripts.promote, arguments: [keys.prefix, limit]).int ?? 0
    }

    /// Gives back what every worker holds whose heartbeat has been missing for `grace` (seen
    /// missing by an earlier call at least that long ago); returns how many jobs.
    @discardableResult
    public func reapDeadWorkers(grace: Duration, on redis: RedisConnection) throws -> Int {
        try redis.evalScript(Scripts.release, arguments: [keys.prefix, "", Int(grace.milliseconds)]).int ?? 0
    }

    /// Gives back what one worker or committer holds (at its start and at its end).
    @discardableResult
    public func release(worker: String, on redis: RedisConnection) throws -> Int {
        precondition(!worker.isEmpty)
        return try redis.evalScript(Scripts.release, arguments: [keys.prefix, worker, 0]).int ?? 0
    }

    /// Temporary files of jobs that were dropped or purged while a delivery had one.
    public func staleParts(limit: Int = 100, on redis: RedisConnection) throws -> [String] {
        try redis.send("SRANDMEMBER", keys.staleParts, limit).array?.compactMap(\.string) ?? []
    }

    public func forgetStalePart(_ path: String, on redis: RedisConnection) throws {
        try redis.send("SREM", keys.staleParts, path)
    }

    // MARK: - Committers

    /// Up to `max` done jobs, moved into the committer's list (what it already held first).
    /// Entries whose hash is gone come back with a nil job.
    /// With `fresh`, only jobs newly taken from `done` (the committer is still writing what it holds).
    public func takeDone(committer: String, max: Int, fresh: Bool = false, on redis: RedisConnection) throws -> [(id: String, job: Job?)] {
        let reply = try redis.evalScript(Scripts.takeBatch, keys: [keys.committing(committer)],
                                         arguments: [keys.prefix, max, fresh ? "1" : "0"])
        return try idsWithJobs(reply, redis, "take")
    }

    /// Waits up to `timeout` for a done job, moving it into the committer's list.
    public func waitForDone(committer: String, timeout: Duration, on redis: RedisConnection) throws -> Bool {
        let seconds = max(1, Int((Double(timeout.milliseconds) / 1000).rounded(.up)))
        return try !redis.sendBlocking(RedisCommand("BRPOPLPUSH", keys.done, keys.committing(committer), seconds),
                                       block: .seconds(seconds)).isNull
    }

    /// After the SQL commit: jobs become `committed` (kept for `ttl`) or start their follow-up.
    /// `from` is the committer's list, or nil for a job committed straight from `done`.
    @discardableResult
    public func markCommitted(ids: [String], from committer: String?, ttl: Duration, on redis: RedisConnection) throws -> Int {
        if ids.isEmpty { return 0 }
        let list = committer.map(keys.committing) ?? keys.done
        let seconds = max(1, Int(ttl.milliseconds / 1000))
        return try redis.evalScript(Scripts.committed, keys: [list], arguments: [keys.prefix, seconds] + ids).int ?? 0
    }

    // MARK: - Dead letters

    public func deadJobs(on redis: RedisConnection) throws -> [(id: String, job: Job?)] {
        try idsWithJobs(redis.evalScript(Scripts.deadList, arguments: [keys.prefix]), redis, "dead")
    }

    /// Reads the scripts' `{{id, {hash fields}}…}` replies.
    private func idsWithJobs(_ reply: RedisReply, _ redis: RedisConnection, _ script: String) throws -> [(id: String, job: Job?)] {
        guard let items = reply.array else { throw malformed(redis, script) }
        return try items.map { item in
            guard let pair = item.array, pair.count == 2, let id = pair[0].string else { throw malformed(redis, script) }
            return (id, Job(hash: pair[1].hash ?? [:]))
        }
    }

    public enum DeadAction: String, Sendable {
        case replay, purge
        case dryRun = "dry-run"
    }

    /// Replays (attempts reset, back on the queue) or purges dead jobs: the given cids, or all when
    /// `cids` is nil. Returns the ids acted on.
    public func dead(_ action: DeadAction, cids: [Int64]?, on redis: RedisConnection) throws -> [String] {
        if let cids, cids.isEmpty { return [] }
        let reply = try redis.evalScript(Scripts.deadAction, arguments: [keys.prefix, action.rawValue] + (cids ?? []))
        return reply.array?.compactMap(\.string) ?? []
    }

    // MARK: - Reconciliation

    /// Every content id that has a job hash (SCAN, in batches).
    public func jobCIDs(on redis: RedisConnection) throws -> [Int64] {
        var cursor = "0"
        var cids: [Int64] = []
        let pattern = keys.job(0).dropLast(1) + "*"
        repeat {
            guard let reply = try redis.send("SCAN", cursor, "MATCH", String(pattern), "COUNT", 1000).array, reply.count == 2,
                  let next = reply[0].string, let names = reply[1].array
            else { throw malformed(redis, "scan") }
            cursor = next
            cids += names.compactMap { $0.string.flatMap { Int64($0.dropFirst(pattern.count - 1)) } }
        } while cursor != "0"
        return cids
    }

    /// Jobs whose id is missing from the list its status calls for; with `fix`, put back there.
    public func orphans(cids: [Int64], fix: Bool, on redis: RedisConnection) throws -> [(cid: Int64, status: String, id: String)] {
        var found: [(Int64, String, String)] = []
        var index = 0
        while index < cids.count {
            let batch = cids[index..<min(index + 500, cids.count)]
            index += 500
            let reply = try redis.evalScript(Scripts.orphans, arguments: [keys.prefix, fix ? "1" : "0"] + Array(batch))
            for item in reply.array ?? [] {
                guard let fields = item.array, fields.count == 3, let cid = fields[0].string.flatMap(Int64.init),
                      let status = fields[1].string, let id = fields[2].string else { throw malformed(redis, "orphans") }
                found.append((cid, status, id))
            }
        }
        return found
    }

    private func malformed(_ redis: RedisConnection, _ script: String) -> RedisError {
        RedisError(code: .protocolViolation, address: redis.url.address, command: "EVALSHA", message: "unexpected reply from the \(script) script")
    }
}

/// Depths of every list, for `relocator status` and `/v1/queues`.
public struct QueueStats: Sendable, Equatable {
    public var queues: [(String, Int)]
    public var processing: Int
    public var committing: Int
    public var retry: Int
    public var dead: Int
    public var done: Int
    public var workers: Int
    public var aliveWorkers: Int

    public static func == (a: QueueStats, b: QueueStats) -> Bool {
        a.queues.map(\.0) == b.queues.map(\.0) && a.queues.map(\.1) == b.queues.map(\.1) && a.processing == b.processing
            && a.committing == b.committing && a.retry == b.retry && a.dead == b.dead && a.done == b.done
            && a.workers == b.workers && a.aliveWorkers == b.aliveWorkers
    }

    /// Jobs somewhere between submission and commit.
    public var inFlight: Int { queues.reduce(0) { $0 + $1.1 } + processing + committing + retry + done }
}
