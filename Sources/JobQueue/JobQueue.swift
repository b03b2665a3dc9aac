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

    // MARK: - Submitting (enqueue.lua)

    public typealias CountPolicy = RelocatorCore.CountPolicy

    public enum SubmitOutcome: String, Sendable, CaseIterable {
        /// A new job was queued.
        case created
        /// The job already aimed at this target; only the count changed.
        case updated
        /// A waiting job got a new target (new gen, pushed on the new target's queue).
        case retargeted
        /// A job whose copy may already be at its target was sent back where it came from: the next
        /// delivery removes that copy (or moves the file back).
        case reversed
        /// A dead job whose copy may be at its target runs again to finish its move.
        case requeued
        /// A move is in flight; a follow-up to the new target is queued after it commits.
        case followUp = "follow_up"
        /// The file is already on this level: nothing to do.
        case inPlace = "in_place"
        /// A waiting job was dropped: the new target is where the file already is.
        case dropped
        /// The content changed level after the caller read it: read it again and resubmit (with
        /// `readAt` = `JobQueue.freshRead`).
        case staleLevel = "stale_level"
    }

    /// The `readAt` of a level read from the database just now: it stands whatever Redis holds.
    public static let freshRead: Int64 = -1

    public struct Submission: Sendable {
        public var outcome: SubmitOutcome
        public var job: Job?
        public var fields: [String: String]

        public init(outcome: SubmitOutcome, job: Job?, fields: [String: String]) {
            self.outcome = outcome
            self.job = job
            self.fields = fields
        }
    }

    /// The enqueue script as one call (for a pipeline or the API's pipeliner).
    public func submitCall(cid: Int64, count: Int64, filename: String, dbLevel: String, target: String, readAt: Int64,
                           policy: CountPolicy = .none) -> RedisCall {
        let shard = keys.shard(of: cid)
        return .script(QueueScripts.enqueue,
                       keys: [shard.job(cid), shard.queue(target), shard.retry, shard.deferred, shard.dead, shard.gens,
                              shard.movedAt, shard.residents(dbLevel)],
                       arguments: [cid, count, filename, dbLevel, target, readAt, policy.halfLifeArgument, policy.residencyArgument])
    }

    /// Creates, coalesces or drops the content's job. `readAt` is when `dbLevel` was read from the
    /// database (ms since 1970): a job committed after that knows better.
    public func submit(cid: Int64, count: Int64, filename: String, dbLevel: String, target: String,
                       readAt: Int64 = JobQueue.nowMilliseconds(), policy: CountPolicy = .none, on redis: RedisConnection) throws -> Submission {
        let reply = try redis.pipeline(calls: [submitCall(cid: cid, count: count, filename: filename, dbLevel: dbLevel,
                                                          target: target, readAt: readAt, policy: policy)])[0]
        return try submission(from: reply.throwingServerError(address: redis.url.address, command: "EVALSHA enqueue.lua"),
                              address: redis.url.address)
    }

    /// Many submissions in one pipeline (bulk `enqueue`).
    public func submitMany(_ items: [(cid: Int64, count: Int64, filename: String, dbLevel: String, target: String)],
                           readAt: Int64, policy: CountPolicy = .none, on redis: RedisConnection) throws -> [Submission] {
        let replies = try redis.pipeline(calls: items.map {
            submitCall(cid: $0.cid, count: $0.count, filename: $0.filename, dbLevel: $0.dbLevel, target: $0.target, readAt: readAt,
                       policy: policy)
        })
        return try replies.map {
            try submission(from: $0.throwingServerError(address: redis.url.address, command: "EVALSHA enqueue.lua"), address: redis.url.address)
        }
    }

    /// The enqueue script for one request.
    public func submitCall(_ request: SubmitRequest) -> RedisCall {
        submitCall(cid: request.cid, count: request.count, filename: request.filename, dbLevel: request.dbLevel, target: request.target,
                   readAt: request.readAt, policy: request.policy)
    }

    /// Reads the enqueue script's reply as a result.
    public func submitResult(from reply: RedisReply, address: String) throws -> SubmitResult {
        let submission = try submission(from: reply, address: address)
        return SubmitResult(outcome: RelocatorCore.SubmitOutcome(rawValue: submission.outcome.rawValue)!, job: submission.job)
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
        guard let items = reply.array, items.count == 2, let word = items[0].string,
              let outcome = SubmitOutcome(rawValue: word)
        else { throw malformed(address, "enqueue.lua") }
        let fields = items[1].hash ?? [:]
        return Submission(outcome: outcome, job: Job(hash: fields), fields: fields)
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

    // MARK: - Taking work (take.lua, BRPOPLPUSH, claim.lua)

    /// An id moved into a worker's processing list, not yet claimed.
    public struct Taken: Sendable, Equatable {
        public var id: String
        public var shard: Int
        /// The level whose queue it came from.
        public var level: String

        public init(id: String, shard: Int, level: String) {
            self.id = id
            self.shard = shard
            self.level = level
        }
    }

    /// The oldest id waiting on the first of `levels` (in that order) in one shard that has one,
    /// moved into the worker's processing list; nil when they are all empty or paused. Does not block.
    public func take(worker: String, shard index: Int, levels: [String], on redis: RedisConnection) throws -> Taken? {
        if levels.isEmpty { return nil }
        let shard = keys.shard(index)
        let reply = try redis.evalScript(QueueScripts.take, keys: [shard.processing(worker), shard.paused] + levels.map(shard.queue),
                                         arguments: levels)
        if reply.isNull { return nil }
        guard let items = reply.array, items.count == 2, let id = items[0].string, let position = items[1].int,
              position >= 1, position <= levels.count
        else { throw malformed(redis.url.address, "take.lua") }
        return Taken(id: id, shard: index, level: levels[position - 1])
    }

    /// Waits up to `timeout` for an id on one level's queue of one shard, moving it into the
    /// worker's processing list (BRPOPLPUSH). It still has to be claimed.
    public func waitForWork(worker: String, shard index: Int, level: String, timeout: Duration,
                            on redis: RedisConnection) throws -> Taken? {
        let shard = keys.shard(index)
        let reply = try redis.sendBlocking(
            RedisCommand("BRPOPLPUSH", shard.queue(level), shard.processing(worker), Self.blockSeconds(timeout)), block: timeout)
        return reply.string.map { Taken(id: $0, shard: index, level: level) }
    }

    /// BRPOPLPUSH's timeout in seconds, at least 10 ms (0 would block for ever).
    static func blockSeconds(_ timeout: Duration) -> String {
        let milliseconds = max(10, timeout.milliseconds)
        return "\(milliseconds / 1000).\(String(repeating: "0", count: 3 - String(milliseconds % 1000).count))\(milliseconds % 1000)"
    }

    public enum Claim: Sendable, Equatable {
        /// The job is this worker's now (`moving`); its hash as stored.
        case claimed([String: String])
        /// An older generation or a dropped job: nothing to do (the id was removed).
        case stale
        /// A reconcile run holds the content: the id went back to its queue.
        case leased
        /// Its level is paused: the id went back to the head of its queue, untouched; take nothing
        /// more from that queue until the level is resumed.
        case paused
    }

    public func claim(_ taken: Taken, worker: String, on redis: RedisConnection) throws -> Claim {
        guard let id = JobID(taken.id) else {
            // Not an id this program writes: drop it from the processing list.
            try redis.send("LREM", keys.shard(taken.shard).processing(worker), 1, taken.id)
            return .stale
        }
        let shard = keys.shard(taken.shard)
        let reply = try redis.evalScript(QueueScripts.claim,
                                         keys: [shard.processing(worker), shard.job(id.cid), shard.lease(id.cid), shard.queue(taken.level),
                                                shard.paused],
                                         arguments: [taken.id, worker])
        guard let items = reply.array, let word = items.first?.string else { throw malformed(redis.url.address, "claim.lua") }
        switch word {
        case "claimed":
            guard items.count == 2, let fields = items[1].hash else { throw malformed(redis.url.address, "claim.lua") }
            return .claimed(fields)
        case "stale": return .stale
        case "leased": return .leased
        case "paused": return .paused
        default: throw malformed(redis.url.address, "claim.lua")
        }
    }

    // MARK: - Moving (progress.lua, ack.lua, fail.lua, defer.lua)

    /// Records how far a move has gone while the job is still this delivery's (its generation,
    /// worker and token). False: the job is no longer this delivery's (reaped, re-aimed,
    /// forgotten) — the move must stop before publishing. The caller holds the content's lock: the
    /// fence of an earlier delivery is cleared.
    public func recordProgress(_ id: JobID, worker: String, token: String, _ fields: [(JobField, String)],
                               on redis: RedisConnection) throws -> Bool {
        let shard = keys.shard(of: id.cid)
        let reply = try redis.evalScript(QueueScripts.progress, keys: [shard.job(id.cid)],
                                         arguments: [id.description, worker, token] + fields.flatMap { [$0.0.rawValue, $0.1] })
        return reply.int == 1
    }

    /// The move is verified: the job goes to `done`. `foundIn` names the level the file was taken
    /// from when it was not the job's `db_level`. False when the job is no longer this delivery's.
    @discardableResult
    public func ack(_ id: JobID, worker: String, token: String, checksum: String, bytes: Int64, foundIn: String?,
                    on redis: RedisConnection) throws -> Bool {
        let shard = keys.shard(of: id.cid)
        let reply = try redis.evalScript(QueueScripts.ack, keys: [shard.processing(worker), shard.job(id.cid), shard.done, shard.stats,
                                                                  shard.movedAt],
                                         arguments: [id.description, worker, token, checksum, bytes, foundIn ?? ""])
        return reply.int == 1
    }

    public enum FailOutcome: String, Sendable {
        case retrying, dead, dropped, reversed, stale
    }

    /// The move failed: a retry after `delay`, or the dead-letter list.
    @discardableResult
    public func fail(_ id: JobID, worker: String, token: String, reason: String, message: String, permanent: Bool, delay: Duration,
                     maxAttempts: Int, on redis: RedisConnection) throws -> FailOutcome {
        let shard = keys.shard(of: id.cid)
        let reply = try redis.evalScript(
            QueueScripts.fail,
            keys: [shard.processing(worker), shard.job(id.cid), shard.retry, shard.dead, shard.gens, shard.stats],
            arguments: [id.description, worker, token, reason, String(message.prefix(1000)), permanent ? "1" : "0",
                        Int(delay.milliseconds), maxAttempts])
        guard let word = reply.string, let outcome = FailOutcome(rawValue: word) else { throw malformed(redis.url.address, "fail.lua") }
        return outcome
    }

    /// The job must wait (no room on its target, a residency window, the content's lock held by
    /// another delivery): `deferred` for `delay` by Redis' clock, without counting an attempt.
    /// `locked`: the delivery held the content's lock (the fence of an earlier one is cleared).
    /// False when it is no longer this delivery's.
    @discardableResult
    public func deferJob(_ id: JobID, worker: String, token: String, reason: String, for delay: Duration, locked: Bool,
                         on redis: RedisConnection) throws -> Bool {
        let shard = keys.shard(of: id.cid)
        return try redis.evalScript(QueueScripts.deferJob, keys: [shard.processing(worker), shard.job(id.cid), shard.deferred],
                                    arguments: [id.description, worker, token, reason, max(0, delay.milliseconds), locked ? "1" : "0"]).int == 1
    }

    // MARK: - Maintenance (due.lua, promote.lua, giveback.lua, handback.lua)

    /// Moves due retries and deferrals of every shard back to their queues; returns how many.
    /// `horizons`: the longest a retry or a deferral waits; one scheduled further ahead of Redis'
    /// clock was scheduled by a clock that has stepped back since, and is due too.
    @discardableResult
    public func promoteDue(limit: Int = 500, horizons: ScheduleHorizons = .none, on redis: RedisConnection) throws -> Int {
        var promoted = 0
        for shard in keys.shards {
            for (set, status, horizon) in [(shard.retry, JobStatus.retrying, horizons.retry), (shard.deferred, .deferred, horizons.deferral)] {
                let beyond = horizon.map { min(max(0, $0.milliseconds), Int64(1) << 52) } ?? -1
                let due = try redis.evalScript(QueueScripts.due, keys: [set], arguments: [limit, beyond]).array?.compactMap(\.string) ?? []
                promoted += try settle(due, in: shard, on: redis) { id, target in
                    .script(QueueScripts.promote, keys: [set, shard.job(id.cid), shard.queue(target)],
                            arguments: [id.description, target, status.rawValue])
                } outcome: { $0 == "promoted" }
            }
        }
        return promoted
    }

    /// Runs one script per id whose keys depend on the job's target: reads the targets, runs the
    /// scripts in one pipeline, and again for those whose target moved in between ("changed").
    /// Returns how many calls `outcome` counted.
    private func settle(_ ids: [String], in shard: ShardKeys, on redis: RedisConnection,
                        _ call: (JobID, String) -> RedisCall, outcome: (String) -> Bool,
                        invalid: ((String) -> RedisCall)? = nil) throws -> Int {
        var pending = ids
        var counted = 0
        for _ in 0..<5 where !pending.isEmpty {
            var calls: [RedisCall] = []
            var parsed: [(String, JobID)] = []
            for raw in pending {
                if let id = JobID(raw) { parsed.append((raw, id)) } else if let invalid { calls.append(invalid(raw)) }
            }
            let targets = try redis.pipeline(parsed.map { RedisCommand("HGET", shard.job($0.1.cid), JobField.target.rawValue) })
            calls += zip(parsed, targets).map { call($0.0.1, $0.1.string ?? "") }
            if calls.isEmpty { break }
            let replies = try redis.pipeline(calls: calls)
            var again: [String] = []
            let offset = calls.count - parsed.count
            for (index, reply) in replies.enumerated() {
                let word = try reply.throwingServerError(address: redis.url.address, command: "EVALSHA").string ?? ""
                if word == "changed", index >= offset { again.append(parsed[index - offset].0) }
                if outcome(word) { counted += 1 }
            }
            pending = again
        }
        return counted
    }

    /// The ids a worker holds in its processing lists, by shard.
    public func held(worker: String, on redis: RedisConnection) throws -> [(shard: Int, id: String)] {
        let replies = try redis.pipeline(keys.shards.map { RedisCommand("LRANGE", $0.processing(worker), 0, -1) })
        return try zip(keys.shards, replies).flatMap { shard, reply in
            try (reply.throwingServerError(address: redis.url.address, command: "LRANGE").array ?? []).compactMap(\.string)
                .map { (shard.index, $0) }
        }
    }

    /// Puts jobs a worker holds back on their queues without counting an attempt: the given ids,
    /// or everything in its processing lists. Returns how many went back. `fence`: the deliveries
    /// may still be acting (a reaped worker may only be paused; an earlier run under the same id may
    /// still live) — false only when the worker gives back what it holds after its moves ended.
    @discardableResult
    public func giveBack(worker: String, ids: [(shard: Int, id: String)]? = nil, fence: Bool = true, on redis: RedisConnection) throws -> Int {
        let all = try ids ?? held(worker: worker, on: redis)
        var given = 0
        for shard in keys.shards {
            let mine = all.filter { $0.shard == shard.index }.map(\.id)
            if mine.isEmpty { continue }
            given += try settle(mine, in: shard, on: redis) { id, target in
                .script(QueueScripts.giveback, keys: [shard.processing(worker), shard.job(id.cid), shard.queue(target)],
                        arguments: [id.description, worker, target, fence ? "1" : "0"])
            } outcome: { $0 == "given" } invalid: { raw in
                .command(RedisCommand("LREM", shard.processing(worker), 1, raw))
            }
        }
        return given
    }

    /// What a committer holds goes back to `done` in every shard. Returns how many ids.
    @discardableResult
    public func handBack(committer: String, on redis: RedisConnection) throws -> Int {
        let replies = try redis.pipeline(calls: keys.shards.map {
            .script(QueueScripts.handback, keys: [$0.committing(committer), $0.done], arguments: [])
        })
        return try replies.reduce(0) { $0 + (try $1.throwingServerError(address: redis.url.address, command: "EVALSHA handback.lua").int ?? 0) }
    }

    /// Everything a worker or committer holds goes back (at its start, when reaped, and at its
    /// end). `fence` as for `giveBack`.
    @discardableResult
    public func release(worker: String, fence: Bool = true, on redis: RedisConnection) throws -> Int {
        precondition(!worker.isEmpty)
        return try giveBack(worker: worker, fence: fence, on: redis) + handBack(committer: worker, on: redis)
    }

    // MARK: - Workers and committers (control slot: reap-check.lua, forget-worker.lua)

    /// Announces a worker (or committer) as alive for `ttl`, with what `status` shows of it;
    /// `beat_at` is Redis' clock (heartbeat.lua).
    public func heartbeat(worker: String, info: [WorkerField: String], ttl: Duration, on redis: RedisConnection) throws {
        let control = keys.control
        var arguments: [any RedisArgumentConvertible] = [worker, max(1, ttl.milliseconds)]
        for (field, value) in info where field != .beatAt { arguments += [field.rawValue, value] }
        try redis.evalScript(QueueScripts.heartbeat, keys: [control.workers, control.heartbeat(worker)], arguments: arguments)
    }

    /// Records `adding` as levels seen initialised; returns every level recorded so, sorted.
    public func levelsSeen(adding: [String], on redis: RedisConnection) throws -> [String] {
        let key = keys.control.levelsSeen
        let replies = try redis.pipeline((adding.isEmpty ? [] : [RedisCommand(["SADD", key] + adding.map { $0 as any RedisArgumentConvertible })]) + [RedisCommand("SMEMBERS", key)])
        for reply in replies { _ = try reply.throwingServerError(address: redis.url.address, command: "SMEMBERS") }
        return (replies.last?.array ?? []).compactMap(\.string).sorted()
    }

    /// Says goodbye: the heartbeat and the membership go.
    public func unregister(worker: String, on redis: RedisConnection) throws {
        let replies = try redis.pipeline([RedisCommand("DEL", keys.control.heartbeat(worker)), RedisCommand("SREM", keys.control.workers, worker)])
        for reply in replies { _ = try reply.throwingServerError(address: redis.url.address, command: "UNREGISTER") }
    }

    /// Gives back what every worker holds whose heartbeat has been missing for `grace` (seen
    /// missing by an earlier call at least that long ago); returns how many jobs.
    @discardableResult
    public func reap(grace: Duration, on redis: RedisConnection) throws -> Int {
        let control = keys.control
        let workers = try redis.send("SMEMBERS", control.workers).array?.compactMap(\.string) ?? []
        if workers.isEmpty { return 0 }
        let verdicts = try redis.pipeline(calls: workers.map {
            .script(QueueScripts.reapCheck, keys: [control.workers, control.heartbeat($0), control.suspect($0)],
                    arguments: [$0, Int(grace.milliseconds)])
        })
        var given = 0
        for (worker, verdict) in zip(workers, verdicts) where verdict.string == "dead" {
            given += try release(worker: worker, on: redis)
            try redis.evalScript(QueueScripts.forgetWorker, keys: [control.workers, control.heartbeat(worker), control.suspect(worker)],
                                 arguments: [worker, Int(grace.milliseconds)])
        }
        return given
    }

    /// Every worker and committer whose heartbeat is alive, with what it reports.
    public func liveWorkers(on redis: RedisConnection) throws -> [String: [WorkerField: String]] {
        let workers = try redis.send("SMEMBERS", keys.control.workers).array?.compactMap(\.string) ?? []
        let beats = try redis.pipeline(workers.map { RedisCommand("HGETALL", keys.control.heartbeat($0)) })
        var result: [String: [WorkerField: String]] = [:]
        for (worker, reply) in zip(workers, beats) {
            guard let info = reply.hash, !info.isEmpty else { continue }
            result[worker] = Dictionary(uniqueKeysWithValues: info.compactMap { name, value in WorkerField(rawValue: name).map { ($0, value) } })
        }
        return result
    }

    // MARK: - Placement (hit.lua, permit.lua, room.lua, bandwidth.lua)

    /// Adds `hits` to a content's decaying counter; returns its value now.
    public func hit(cid: Int64, hits: Double, halfLife: Duration, on redis: RedisConnection) throws -> Double {
        let reply = try redis.evalScript(QueueScripts.hit, keys: [keys.shard(of: cid).hits],
                                         arguments: [cid, String(hits), max(1, halfLife.milliseconds)])
        guard let value = reply.string.flatMap(Double.init) else { throw malformed(redis.url.address, "hit.lua") }
        return value
    }

    /// The coldest residents of a level (lowest score first), up to `limit`, from every shard.
    public func coldest(level: String, limit: Int, on redis: RedisConnection) throws -> [(cid: Int64, score: Double)] {
        let replies = try redis.pipeline(keys.shards.map { RedisCommand("ZRANGE", $0.residents(level), 0, limit - 1, "WITHSCORES") })
        var found: [(Int64, Double)] = []
        for reply in replies {
            let items = try reply.throwingServerError(address: redis.url.address, command: "ZRANGE").array ?? []
            for pair in items.chunks(of: 2) where pair.count == 2 {
                if let cid = pair.first?.string.flatMap(Int64.init), let score = pair.last?.string.flatMap(Double.init) { found.append((cid, score)) }
            }
        }
        return Array(found.sorted { $0.1 < $1.1 }.prefix(limit))
    }

    /// Residents of a level whose score is below `score`, from every shard (lowest first).
    /// A level's hottest residents (highest scores first over every shard), at most `limit`.
    public func hottest(level: String, limit: Int, on redis: RedisConnection) throws -> [(cid: Int64, score: Double)] {
        let replies = try redis.pipeline(keys.shards.map { RedisCommand("ZREVRANGE", $0.residents(level), 0, limit - 1, "WITHSCORES") })
        var found: [(cid: Int64, score: Double)] = []
        for reply in replies {
            let items = try reply.throwingServerError(address: redis.url.address, command: "ZREVRANGE").array ?? []
            for pair in items.chunks(of: 2) where pair.count == 2 {
                if let cid = pair.first?.string.flatMap(Int64.init), let score = pair.last?.string.flatMap(Double.init) { found.append((cid, score)) }
            }
        }
        return Array(found.sorted { $0.score > $1.score }.prefix(limit))
    }

    public func residents(level: String, below score: Double, limit: Int, on redis: RedisConnection) throws -> [(cid: Int64, score: Double)] {
        let replies = try redis.pipeline(keys.shards.map {
            RedisCommand("ZRANGEBYSCORE", $0.residents(level), "-inf", "(\(score)", "WITHSCORES", "LIMIT", 0, limit)
        })
        var found: [(Int64, Double)] = []
        for reply in replies {
            let items = try reply.throwingServerError(address: redis.url.address, command: "ZRANGEBYSCORE").array ?? []
            for pair in items.chunks(of: 2) where pair.count == 2 {
                if let cid = pair.first?.string.flatMap(Int64.init), let score = pair.last?.string.flatMap(Double.init) { found.append((cid, score)) }
            }
        }
        return Array(found.sorted { $0.1 < $1.1 }.prefix(limit))
    }

    /// A content's score on a level, nil when it is not a known resident there.
    public func residentScore(cid: Int64, level: String, on redis: RedisConnection) throws -> Double? {
        try redis.send("ZSCORE", keys.shard(of: cid).residents(level), cid).string.flatMap(Double.init)
    }

    /// When a content last moved (ms), nil when never (as far as Redis knows).
    public func lastMoved(cid: Int64, on redis: RedisConnection) throws -> Int64? {
        try redis.send("HGET", keys.shard(of: cid).movedAt, cid).string.flatMap(Int64.init)
    }

    /// A permit for one more move into `level` (at most `most` at once); false when it has them all.
    public func permit(level: String, holder: String, most: Int, ttl: Duration, on redis: RedisConnection) throws -> Bool {
        try redis.evalScript(QueueScripts.permit, keys: [keys.control.permits(level)], arguments: [holder, most, max(1, ttl.milliseconds)]).int == 1
    }

    public func releasePermit(level: String, holder: String, on redis: RedisConnection) throws {
        try redis.send("ZREM", keys.control.permits(level), holder)
    }

    /// Reserves room for a copy of `bytes` into `level`, which has `room` bytes left below its
    /// high watermark by the caller's reading of its disk, counting what other slots reserved and
    /// have not released: granted or not, and the bytes the others hold.
    public func reserveRoom(level: String, holder: String, bytes: Int64, room: Int64, ttl: Duration,
                            on redis: RedisConnection) throws -> (granted: Bool, others: Int64) {
        let reply = try redis.evalScript(QueueScripts.room, keys: [keys.control.reserved(level)],
                                         arguments: [holder, max(0, bytes), room, max(1, ttl.milliseconds)])
        guard let items = reply.array, items.count == 2, let granted = items[0].int, let others = items[1].int else {
            throw malformed(redis.url.address, "room.lua")
        }
        return (granted == 1, Int64(others))
    }

    public func releaseRoom(level: String, holder: String, on redis: RedisConnection) throws {
        try redis.send("HDEL", keys.control.reserved(level), holder)
    }

    /// Takes `bytes` from the level's shared token bucket (`rate` bytes per second); 0 when granted,
    /// else how long to wait before asking again.
    public func takeBandwidth(level: String, rate: Int64, bytes: Int64, on redis: RedisConnection) throws -> Duration {
        let wait = try redis.evalScript(QueueScripts.bandwidth, keys: [keys.control.bandwidth(level)], arguments: [max(1, rate), max(1, bytes)]).int ?? 0
        return .milliseconds(wait)
    }

    /// A deferred job whose content can never fit below its target's high watermark goes to the
    /// dead letters with reason `does_not_fit` and `message` (does-not-fit.lua). False when the job
    /// changed meanwhile.
    @discardableResult
    public func giveUpDoesNotFit(_ id: JobID, message: String, on redis: RedisConnection) throws -> Bool {
        let shard = keys.shard(of: id.cid)
        return try redis.evalScript(QueueScripts.doesNotFit, keys: [shard.job(id.cid), shard.deferred, shard.dead, shard.stats],
                                    arguments: [id.description, String(message.prefix(1000))]).int == 1
    }

    /// The level table and policies as the committer last published them (JSON), nil when none.
    public func placementSnapshot(on redis: RedisConnection) throws -> String? {
        try redis.send("GET", keys.control.placement).string
    }

    public func publishPlacement(_ json: String, on redis: RedisConnection) throws {
        try redis.send("SET", keys.control.placement, json)
    }

    /// The rebalancer's lock (hold.lua): held for `ttl` by `holder`, a token unique to the process
    /// (renewed when it already holds it). False when another holds it.
    public func holdRebalancer(_ holder: String, ttl: Duration, on redis: RedisConnection) throws -> Bool {
        try redis.evalScript(QueueScripts.hold, keys: [keys.control.rebalancer], arguments: [holder, max(1, ttl.milliseconds)]).int == 1
    }

    // MARK: - Readiness (writable.lua)

    /// Throws the error Redis answers when it refuses writes (`OOM`, `READONLY`, `NOREPLICAS`,
    /// `MISCONF`…) on the control slot's node or on any shard's: the same refusal a submission would
    /// meet. Writes nothing.
    public func checkWritable(on redis: RedisConnection) throws {
        let slots = [keys.control.workers] + keys.shards.map(\.stats)
        let replies = try redis.pipeline(calls: slots.map { .script(QueueScripts.writable, keys: [$0], arguments: []) })
        for reply in replies { _ = try reply.throwingServerError(address: redis.url.address, command: "EVALSHA writable.lua") }
    }

    // MARK: - Pausing a level (control slot)

    public func paused(on redis: RedisConnection) throws -> Set<String> {
        Set(try redis.send("SMEMBERS", keys.control.paused).array?.compactMap(\.string) ?? [])
    }

    /// Pauses a level: written in the control slot (what `status` shows) and in every shard's
    /// copy, which that shard's take and claim scripts read. When this returns, no worker starts a
    /// move into the level, whatever it was waiting on; moves already started finish.
    public func pause(level: String, on redis: RedisConnection) throws {
        try setPaused(true, level: level, on: redis)
    }

    /// Resumes a level in every shard and in the control slot.
    public func resume(level: String, on redis: RedisConnection) throws {
        try setPaused(false, level: level, on: redis)
    }

    private func setPaused(_ paused: Bool, level: String, on redis: RedisConnection) throws {
        var names = [keys.control.paused]
        for shard in keys.shards where !names.contains(shard.paused) { names.append(shard.paused) }
        // Resumed in the shards first, paused there last: `status` never shows a level running
        // while a shard still holds its pause.
        if !paused { names.reverse() }
        let replies = try redis.pipeline(names.map { RedisCommand(paused ? "SADD" : "SREM", $0, level) })
        for reply in replies { _ = try reply.throwingServerError(address: redis.url.address, command: paused ? "SADD" : "SREM") }
    }

    // MARK: - Committers (take-done.lua, committed.lua)

    /// Up to `max` done jobs of one shard, moved into the committer's list (what it already held
    /// first, unless `fresh`), each with its hash as stored (empty when the hash is gone).
    public func takeDone(committer: String, shard index: Int, max: Int, fresh: Bool = false,
                         on redis: RedisConnection) throws -> [(id: String, fields: [String: String])] {
        let shard = keys.shard(index)
        let reply = try redis.evalScript(QueueScripts.takeDone, keys: [shard.done, shard.committing(committer)],
                                         arguments: [max, fresh ? "1" : "0"])
        let ids = reply.array?.compactMap(\.string) ?? []
        return try withFields(ids, in: shard, on: redis)
    }

    /// Each id with its job hash (one pipeline).
    func withFields(_ ids: [String], in shard: ShardKeys, on redis: RedisConnection) throws -> [(id: String, fields: [String: String])] {
        let parsed = ids.map(JobID.init)
        let commands = parsed.compactMap { $0.map { RedisCommand("HGETALL", shard.job($0.cid)) } }
        var replies = try redis.pipeline(commands).makeIterator()
        return ids.indices.map { index in
            guard parsed[index] != nil, let reply = replies.next() else { return (ids[index], [:]) }
            return (ids[index], reply.hash ?? [:])
        }
    }

    /// Waits up to `timeout` for a done job of one shard, moving it into the committer's list.
    public func waitForDone(committer: String, shard index: Int, timeout: Duration, on redis: RedisConnection) throws -> Bool {
        let shard = keys.shard(index)
        return try !redis.sendBlocking(RedisCommand("BRPOPLPUSH", shard.done, shard.committing(committer), Self.blockSeconds(timeout)),
                                       block: timeout).isNull
    }

    /// After the SQL commit: jobs of one shard become `committed` (kept for `ttl`) or start their
    /// follow-up. `committer` names the list the ids are in (nil: `done`, a commit straight from
    /// /update_sentence). `levels` names every level a follow-up may go to. Returns the follow-ups
    /// queued and the ids whose follow-up named a level not in `levels` (committed without it).
    @discardableResult
    public func markCommitted(ids: [String], shard index: Int, committer: String?, ttl: Duration, levels: [String],
                              policy: CountPolicy = .none, on redis: RedisConnection) throws -> (followUps: Int, unknownLevel: [String]) {
        if ids.isEmpty { return (0, []) }
        let shard = keys.shard(index)
        let list = committer.map(shard.committing) ?? shard.done
        let jobKeys = ids.map { JobID($0).map { shard.job($0.cid) } ?? shard.job(0) }
        let reply = try redis.evalScript(
            QueueScripts.committed,
            keys: [list, shard.stats, shard.deferred, shard.movedAt, shard.gens] + levels.map(shard.queue) + levels.map(shard.residents) + jobKeys,
            arguments: [max(1, Int(ttl.milliseconds / 1000)), committer == nil ? "0" : "1", levels.count, policy.halfLifeArgument,
                        policy.residencyArgument] + levels + ids)
        guard let items = reply.array, items.count == 2, let followUps = items[0].int else { throw malformed(redis.url.address, "committed.lua") }
        return (followUps, items[1].array?.compactMap(\.string) ?? [])
    }

    // MARK: - Dead letters (dead-action.lua)

    public struct DeadJob: Sendable {
        public var id: String
        public var shard: Int
        /// Nil when the hash is gone or cannot be read as a job.
        public var job: Job?
        public var fields: [String: String]
    }

    /// Every dead job of every shard, newest first within a shard.
    public func deadJobs(on redis: RedisConnection) throws -> [DeadJob] {
        try keys.shards.flatMap { shard in
            let ids = try redis.send("LRANGE", shard.dead, 0, -1).array?.compactMap(\.string) ?? []
            return try withFields(ids, in: shard, on: redis).map { DeadJob(id: $0.id, shard: shard.index, job: Job(hash: $0.fields), fields: $0.fields) }
        }
    }

    public typealias DeadAction = RelocatorCore.DeadAction
    public typealias DeadOutcome = RelocatorCore.DeadOutcome

    /// Replays (attempts reset, back on the queue) or purges dead jobs: those of the given cids, or
    /// all when `cids` is nil. Works on a snapshot of the list, so a job that fails again during a
    /// replay is not met twice. Returns each id acted on with what happened.
    public func dead(_ action: DeadAction, cids: [Int64]?, on redis: RedisConnection) throws -> [(id: String, outcome: DeadOutcome)] {
        let wanted = cids.map(Set.init)
        var results: [(String, DeadOutcome)] = []
        for entry in try deadJobs(on: redis) {
            guard let id = JobID(entry.id) else {
                if wanted == nil {
                    try redis.send("LREM", keys.shard(entry.shard).dead, 0, entry.id)
                    results.append((entry.id, .stale))
                }
                continue
            }
            if let wanted, !wanted.contains(id.cid) { continue }
            let shard = keys.shard(entry.shard)
            var outcome = DeadOutcome.changed
            for _ in 0..<5 where outcome == .changed {
                let levels = try redis.send("HMGET", shard.job(id.cid), JobField.target.rawValue, JobField.dbLevel.rawValue).array ?? []
                let target = levels.first?.string ?? "", origin = levels.last?.string ?? ""
                let reply = try redis.evalScript(QueueScripts.deadAction,
                                                 keys: [shard.dead, shard.job(id.cid), shard.queue(target), shard.queue(origin), shard.gens],
                                                 arguments: [entry.id, action.rawValue, target, origin])
                guard let word = reply.string, let parsed = DeadOutcome(rawValue: word) else { throw malformed(redis.url.address, "dead-action.lua") }
                outcome = parsed
            }
            results.append((entry.id, outcome))
        }
        return results
    }

    // MARK: - Reconciliation (restore.lua, lease.lua, unlease.lua)

    /// Every content id that has a job hash, in every shard (SCAN).
    public func jobCIDs(on redis: RedisConnection) throws -> [Int64] {
        var cids: [Int64] = []
        for shard in keys.shards {
            let prefix = shard.job(0).dropLast(1)
            for name in try redis.scan(match: shard.jobPattern) {
                if name.hasPrefix(prefix), let cid = Int64(name.dropFirst(prefix.count)) { cids.append(cid) }
            }
        }
        return cids
    }

    public typealias Orphan = RelocatorCore.Orphan

    /// Jobs whose id is missing from the list their status calls for (Redis lost a write); with
    /// `fix`, put back there.
    public func orphans(cids: [Int64], fix: Bool, on redis: RedisConnection) throws -> [Orphan] {
        let workers = try redis.send("SMEMBERS", keys.control.workers).array?.compactMap(\.string) ?? []
        var found: [Orphan] = []
        for chunk in cids.chunks(of: 500) {
            let hashes = try redis.pipeline(chunk.map {
                RedisCommand("HMGET", keys.shard(of: $0).job($0), JobField.gen.rawValue, JobField.status.rawValue, JobField.target.rawValue)
            })
            for (cid, reply) in zip(chunk, hashes) {
                guard let values = reply.array, values.count == 3, let gen = values[0].string.flatMap(Int64.init),
                      let status = values[1].string.flatMap(JobStatus.init(rawValue:)) else { continue }
                let target = values[2].string ?? ""
                let shard = keys.shard(of: cid)
                let id = JobID(cid: cid, gen: gen).description
                let held = workers.map { shard.processing($0) }, committing = workers.map { shard.committing($0) }
                var homes: [(key: String, zset: Bool)]
                let restoreTo: String
                switch status {
                case .queued: homes = [(shard.queue(target), false)] + held.map { ($0, false) }; restoreTo = shard.queue(target)
                case .moving: homes = held.map { ($0, false) }; restoreTo = shard.queue(target)
                case .retrying: homes = [(shard.retry, true)]; restoreTo = shard.retry
                case .deferred: homes = [(shard.deferred, true)]; restoreTo = shard.deferred
                case .done: homes = [(shard.done, false)] + committing.map { ($0, false) }; restoreTo = shard.done
                case .dead: homes = [(shard.dead, false)]; restoreTo = shard.dead
                case .committed: continue
                }
                let present = try redis.pipeline(homes.map { $0.zset ? RedisCommand("ZSCORE", $0.key, id) : RedisCommand("LPOS", $0.key, id) })
                if present.contains(where: { !$0.isNull }) { continue }
                var orphan = Orphan(cid: cid, status: status, id: id, restored: false)
                if fix {
                    let word = try redis.evalScript(QueueScripts.restore, keys: [shard.job(cid), restoreTo], arguments: [id, status.rawValue]).string
                    orphan.restored = word == "restored"
                    if word == "changed" || word == "present" { continue }
                }
                found.append(orphan)
            }
        }
        return found
    }

    /// Holds a content for a reconcile run (no worker claims its job meanwhile); false when the
    /// content has a job in flight (neither committed nor dead).
    public func lease(cid: Int64, token: String, ttl: Duration, on redis: RedisConnection) throws -> Bool {
        let shard = keys.shard(of: cid)
        return try redis.evalScript(QueueScripts.lease, keys: [shard.job(cid), shard.lease(cid)],
                                    arguments: [token, Int(ttl.milliseconds)]).int == 1
    }

    /// Forgets what the queue keeps of a content besides its job (`relocator contents remove`):
    /// its place among each level's residents, when it last moved, its hit counter. Its
    /// generation counter stays, so that a content added again under this cid still gets
    /// higher generations.
    public func forgetContent(cid: Int64, levels: [String], on redis: RedisConnection) throws {
        let shard = keys.shard(of: cid)
        let commands = levels.map { RedisCommand("ZREM", shard.residents($0), cid) }
            + [RedisCommand("HDEL", shard.movedAt, cid), RedisCommand("HDEL", shard.hits, cid)]
        for reply in try redis.pipeline(commands) { _ = try reply.throwingServerError(address: redis.url.address, command: "FORGET CONTENT") }
    }

    /// Notes that a content's level changed in the database outside a move (reconcile --fix).
    public func levelChanged(cid: Int64, on redis: RedisConnection) throws {
        try redis.evalScript(QueueScripts.levelChanged, keys: [keys.shard(of: cid).movedAt], arguments: [cid])
    }

    public func unlease(cid: Int64, token: String, on redis: RedisConnection) throws {
        try redis.evalScript(QueueScripts.unlease, keys: [keys.shard(of: cid).lease(cid)], arguments: [token])
    }

    // MARK: - The shard count

    /// A change of `RELOCATOR_SHARDS` with jobs still in the old layout would strand them; refused.
    public struct ShardCountChange: Error, CustomStringConvertible, Sendable {
        public let recorded: Int
        public let wanted: Int
        public let busy: Int
        public var description: String {
            "RELOCATOR_SHARDS: the queue was laid out in \(recorded) shard\(recorded == 1 ? "" : "s") and \(busy) jobs are still in it; "
                + "keep RELOCATOR_SHARDS=\(recorded) until `relocator status` shows nothing queued, moving, retrying, deferred, done or dead, then change it"
        }
    }

    /// Records the shard count on first use; refuses a different one while the old layout holds
    /// jobs that are not committed, and takes the new one once it is empty.
    public func checkShardCount(on redis: RedisConnection) throws {
        let control = keys.control
        let recorded = try redis.send("HGET", control.config, "shards").string.flatMap(Int.init)
        if recorded == keys.shardCount { return }
        if let recorded, recorded != keys.shardCount {
            let old = JobQueue(keys: try KeySchema(prefix: keys.prefix, shards: recorded))
            var busy = 0
            for cid in try old.jobCIDs(on: redis) {
                let status = try redis.send("HGET", old.keys.shard(of: cid).job(cid), JobField.status.rawValue).string
                if let status, status != JobStatus.committed.rawValue { busy += 1 }
            }
            if busy > 0 { throw ShardCountChange(recorded: recorded, wanted: keys.shardCount, busy: busy) }
        }
        try redis.send("HSET", control.config, "shards", keys.shardCount)
    }

    // MARK: - Statistics

    /// Depths, ages and totals of every shard and the workers' state, for `status`, `/v1/queues`,
    /// the metrics and the dashboard (one pipeline per shard and one for the control slot).
    public func stats(levels: [String], on redis: RedisConnection) throws -> QueueStats {
        let control = keys.control
        let workers = (try redis.send("SMEMBERS", control.workers).array?.compactMap(\.string) ?? []).sorted()
        let paused = try self.paused(on: redis)
        var stats = QueueStats(levels: levels.map { QueueStats.Level(level: $0, paused: paused.contains($0)) })
        var heldBy: [String: Int] = [:]
        let now = Self.nowMilliseconds()
        for shard in keys.shards {
            var commands: [RedisCommand] = []
            for level in levels {
                commands.append(RedisCommand("LLEN", shard.queue(level)))
                commands.append(RedisCommand("LINDEX", shard.queue(level), -1))
            }
            commands += [RedisCommand("ZCARD", shard.retry), RedisCommand("ZCARD", shard.deferred), RedisCommand("LLEN", shard.dead),
                         RedisCommand("LLEN", shard.done), RedisCommand("HGETALL", shard.stats)]
            for worker in workers {
                commands.append(RedisCommand("LLEN", shard.processing(worker)))
                commands.append(RedisCommand("LLEN", shard.committing(worker)))
            }
            let replies = try redis.pipeline(commands).map { try $0.throwingServerError(address: redis.url.address, command: "STATS") }
            var index = 0
            for position in levels.indices {
                stats.levels[position].depth += replies[index].int ?? 0
                if let oldest = replies[index + 1].string.flatMap(JobID.init) {
                    let age = max(0, now - oldest.gen)
                    stats.levels[position].oldestAgeMilliseconds = max(stats.levels[position].oldestAgeMilliseconds ?? 0, age)
                }
                index += 2
            }
            stats.retry += replies[index].int ?? 0
            stats.deferred += replies[index + 1].int ?? 0
            stats.dead += replies[index + 2].int ?? 0
            stats.done += replies[index + 3].int ?? 0
            for (name, value) in replies[index + 4].hash ?? [:] {
                if let field = StatField(rawValue: name), let number = Int64(value) {
                    stats.totals[field] = (stats.totals[field] ?? 0).saturatingAdd(number)
                }
            }
            index += 5
            for worker in workers {
                let processing = replies[index].int ?? 0, committing = replies[index + 1].int ?? 0
                stats.processing += processing
                stats.committing += committing
                heldBy[worker, default: 0] += processing + committing
                index += 2
            }
        }
        let beats = try redis.pipeline(workers.map { RedisCommand("HGETALL", control.heartbeat($0)) })
        for (worker, reply) in zip(workers, beats) {
            let info = reply.hash ?? [:]
            var fields: [WorkerField: String] = [:]
            for (name, value) in info { if let field = WorkerField(rawValue: name) { fields[field] = value } }
            stats.workers.append(QueueStats.Worker(worker: worker, alive: !info.isEmpty, info: fields, held: heldBy[worker] ?? 0))
        }
        return stats
    }

    private func malformed(_ address: String, _ script: String) -> RedisError {
        RedisError(code: .protocolViolation, address: address, command: "EVALSHA \(script)", message: "unexpected reply from \(script)")
    }
}

