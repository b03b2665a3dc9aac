#if canImport(Glibc)
import Glibc
#endif
import RedisClient
import RelocatorCore

/// The reliable queue over Redis: one typed method per Lua script of `Lua/`, plus the plain reads
/// around them. Every key a script touches is computed here, from `KeySchema`, and passed in KEYS;
/// the scripts get only values in ARGV. A content's job lives in its shard; a method that serves
/// every shard (promoting, reaping, statistics) goes through them in turn.
///
/// Methods block on a connection the caller owns (one thread at a time): the API calls them through
/// a `RedisPool`, workers and committers on connections of their own.
public struct JobQueue: Sendable {
    public let keys: KeySchema

    public init(keys: KeySchema) {
        self.keys = keys
    }

    public static func nowMilliseconds() -> Int64 { WallClock.milliseconds() }

    /// The time a `TIME` reply gives, in ms since 1970 (nil for another reply): the queue's clock,
    /// which stamps the jobs, for an age measured against them.
    static func milliseconds(ofTime reply: RedisReply) -> Int64? {
        guard let parts = reply.array, parts.count == 2, let seconds = parts[0].string.flatMap({ Int64($0) }),
              let micros = parts[1].string.flatMap({ Int64($0) }) else { return nil }
        return seconds.saturatingMultiply(1000).saturatingAdd(micros / 1000)
    }

    // MARK: - Submitting (enqueue.lua)

    public typealias CountPolicy = RelocatorCore.CountPolicy

    public typealias SubmitOutcome = RelocatorCore.SubmitOutcome

    /// The `readAt` of a level read from the database just now: it stands whatever Redis holds.
    public static let freshRead = SubmitRequest.freshRead

    public struct Submission: Sendable {
        public var outcome: SubmitOutcome
        public var job: Job?
        public var fields: [String: String]
        /// Redis' clock when it answered (ms).
        public var queueNow: Int64?

        public init(outcome: SubmitOutcome, job: Job?, fields: [String: String], queueNow: Int64? = nil) {
            self.outcome = outcome
            self.job = job
            self.fields = fields
            self.queueNow = queueNow
        }
    }

    /// The enqueue script as one call (for a pipeline or the API's pipeliner). `queuedBy`: who
    /// submits and the rule that chose `target`, kept in the job when this creates or re-aims it.
    public func submitCall(cid: Int64, count: Int64, filename: String, dbLevel: String, target: String, readAt: Int64,
                           policy: CountPolicy = .none, sentAt: Int64? = nil, readBound: Int64? = nil, queuedBy: QueuedBy? = nil,
                           fromPlan: Bool = false) -> RedisCall {
        let shard = keys.shard(of: cid)
        return .script(QueueScripts.enqueue,
                       keys: [shard.job(cid), shard.queue(target), shard.retry, shard.deferred, shard.dead, shard.gens,
                              shard.movedAt, shard.residents(dbLevel)],
                       arguments: [cid, count, filename, dbLevel, target, readAt, policy.halfLifeArgument, policy.residencyArgument,
                                   queuedBy?.stored ?? "", sentAt.map(String.init) ?? "", readBound.map(String.init) ?? "",
                                   QueueClockEstimate.stepTolerance, fromPlan ? "1" : ""])
    }

    /// Creates, coalesces or drops the content's job. `readAt` is when `dbLevel` was read from the
    /// database (ms since 1970): a job committed after that knows better. `fromPlan`: a plan's
    /// move (`SubmitRequest.fromPlan`).
    public func submit(cid: Int64, count: Int64, filename: String, dbLevel: String, target: String,
                       readAt: Int64 = JobQueue.nowMilliseconds(), policy: CountPolicy = .none, queuedBy: QueuedBy? = nil,
                       fromPlan: Bool = false, on redis: RedisConnection) throws -> Submission {
        let reply = try redis.pipeline(calls: [submitCall(cid: cid, count: count, filename: filename, dbLevel: dbLevel,
                                                          target: target, readAt: readAt, policy: policy, queuedBy: queuedBy,
                                                          fromPlan: fromPlan)])[0]
        return try submission(from: reply.throwingServerError(address: redis.url.address, command: "EVALSHA enqueue.lua"),
                              address: redis.url.address)
    }

    /// Many submissions in one pipeline (bulk `enqueue`).
    public func submitMany(_ items: [(cid: Int64, count: Int64, filename: String, dbLevel: String, target: String, queuedBy: QueuedBy?)],
                           readAt: Int64, policy: CountPolicy = .none, on redis: RedisConnection) throws -> [Submission] {
        let replies = try redis.pipeline(calls: items.map {
            submitCall(cid: $0.cid, count: $0.count, filename: $0.filename, dbLevel: $0.dbLevel, target: $0.target, readAt: readAt,
                       policy: policy, queuedBy: $0.queuedBy)
        })
        return try replies.map {
            try submission(from: $0.throwingServerError(address: redis.url.address, command: "EVALSHA enqueue.lua"), address: redis.url.address)
        }
    }

    /// The enqueue script for one request.
    public func submitCall(_ request: SubmitRequest) -> RedisCall {
        submitCall(cid: request.cid, count: request.count, filename: request.filename, dbLevel: request.dbLevel, target: request.target,
                   readAt: request.readAt, policy: request.policy, sentAt: request.sentAt, readBound: request.readBound,
                   queuedBy: request.queuedBy, fromPlan: request.fromPlan)
    }

    /// Reads the enqueue script's reply as a result.
    /// The job is read straight from the reply's fields (`job(fromFlat:)`), without the dictionary
    /// of `submission(from:)`: the API reads one per request.
    public func submitResult(from reply: RedisReply, address: String) throws -> SubmitResult {
        let reply = try reply.throwingServerError(address: address, command: "EVALSHA enqueue.lua")
        guard case .array(let items) = reply, items.count == 3, let word = items[0].string,
              let outcome = SubmitOutcome(rawValue: word), let queueNow = items[2].int.map(Int64.init)
        else { throw malformed(address, "enqueue.lua") }
        return SubmitResult(outcome: outcome, job: Self.job(fromFlat: items[1]), queueNow: queueNow)
    }

    /// Problems of the server an operator should know at start (Redis may evict keys).
    public func startupWarnings(on redis: RedisConnection) throws -> [String] {
        do {
            let reply = try redis.send("CONFIG", "GET", "maxmemory-policy")
            if let policy = reply.array?.last?.string, policy != "noeviction" {
                return ["Redis maxmemory-policy is '\(policy)': Redis may evict jobs under memory pressure; set it to noeviction"]
            }
            return []
        } catch let error as RedisError where error.code == .server {
            return ["cannot read Redis maxmemory-policy (\(error.message)); make sure it is noeviction"]
        }
    }

    /// Reads the enqueue script's reply.
    public func submission(from reply: RedisReply, address: String) throws -> Submission {
        // An error reply (a Redis still loading its data after a restart, say) is the server's
        // error, not a malformed answer.
        let reply = try reply.throwingServerError(address: address, command: "EVALSHA enqueue.lua")
        guard let items = reply.array, items.count == 3, let word = items[0].string,
              let outcome = SubmitOutcome(rawValue: word), let queueNow = items[2].int.map(Int64.init)
        else { throw malformed(address, "enqueue.lua") }
        let fields = items[1].hash ?? [:]
        return Submission(outcome: outcome, job: Job(hash: fields), fields: fields, queueNow: queueNow)
    }

    // MARK: - Reading

    /// The job hash of a content, as stored; empty when there is none.
    public func fields(cid: Int64, on redis: RedisConnection) throws -> [String: String] {
        try redis.send("HGETALL", keys.shard(of: cid).job(cid)).hash ?? [:]
    }

    public func job(cid: Int64, on redis: RedisConnection) throws -> Job? {
        Job(hash: try fields(cid: cid, on: redis))
    }

    /// A content's job status and generation (one small read), nil when it has no job.
    public func jobState(cid: Int64, on redis: RedisConnection) throws -> (status: JobStatus, gen: Int64)? {
        try jobStates(cids: [cid], on: redis)[cid] ?? nil
    }

    /// The job status and generation of many contents in one pipelined round trip (per node).
    public func jobStates(cids: [Int64], on redis: RedisConnection) throws -> [Int64: (status: JobStatus, gen: Int64)?] {
        let replies = try redis.pipeline(cids.map {
            RedisCommand("HMGET", keys.shard(of: $0).job($0), JobField.status.rawValue, JobField.gen.rawValue)
        })
        var states: [Int64: (status: JobStatus, gen: Int64)?] = [:]
        for (cid, reply) in zip(cids, replies) {
            let values = try reply.throwingServerError(address: redis.url.address, command: "HMGET").array ?? []
            if values.count == 2, let status = values[0].string.flatMap(JobStatus.init(rawValue:)), let gen = values[1].string.flatMap(Int64.init) {
                states[cid] = (status, gen)
            } else {
                states[cid] = .some(nil)
            }
        }
        return states
    }
}

