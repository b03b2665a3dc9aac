import RedisClient
import RelocatorCore

extension JobQueue {
    // MARK: - Maintenance (due.lua, promote.lua, giveback.lua, handback.lua)

    /// Moves due retries and deferrals of every shard back to their queues; returns how many.
    /// `horizons`: the longest a retry or a deferral of `process` waits, announced to the others;
    /// one scheduled further ahead of Redis' clock than any process's announced wait was scheduled
    /// by a clock that has stepped back since, and is due too.
    @discardableResult
    public func promoteDue(limit: Int = 500, horizons: ScheduleHorizons = .none, process: String = "",
                           on redis: RedisConnection) throws -> Int {
        var promoted = 0
        for shard in keys.shards {
            for (set, status, horizon, kind) in [(shard.retry, JobStatus.retrying, horizons.retry, ScheduleHorizons.Kind.retry),
                                                 (shard.deferred, .deferred, horizons.deferral, .deferred)] {
                let beyond = horizon.map(ScheduleHorizons.milliseconds) ?? -1
                let due = try redis.evalScript(QueueScripts.due, keys: [set, shard.horizons],
                                               arguments: [limit, beyond, process.isEmpty ? "" : ScheduleHorizons.field(kind, process: process)])
                    .array?.compactMap(\.string) ?? []
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
    func settle(_ ids: [String], in shard: ShardKeys, on redis: RedisConnection,
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
}
