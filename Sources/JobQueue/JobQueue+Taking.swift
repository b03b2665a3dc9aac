import RedisClient
import RelocatorCore

extension JobQueue {
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
        /// A reconcile run or a rename holds the content: the job waits as `deferred`, at most
        /// `HeldContent.recheck` or until the hold ends.
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
                                                shard.paused, shard.deferred],
                                         arguments: [taken.id, worker, HeldContent.recheck.milliseconds, HeldContent.deferReason])
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
        try acks([(id, worker, token, checksum, bytes, foundIn)], on: redis)[0].get()
    }

    /// Several verified moves acknowledged in one round trip: one `ack.lua` for the moves of each
    /// shard and worker (a pipeline when they are several); for each, as `ack`, and each on its own:
    /// a move the queue refuses with an error (its job key is not a hash, its shard's node answers an
    /// error) fails alone, the others of the batch are acknowledged all the same. Throws only when
    /// the round trip itself fails (then none is known to be acknowledged).
    public func acks(_ moves: [(id: JobID, worker: String, token: String, checksum: String, bytes: Int64, foundIn: String?)],
                     on redis: RedisConnection) throws -> [Result<Bool, RedisError>] {
        if moves.isEmpty { return [] }
        // Groups in the order of their first move; each group's moves in their order.
        var groups: [(shard: Int, worker: String, indices: [Int])] = []
        for (index, move) in moves.enumerated() {
            let shard = keys.shardIndex(of: move.id.cid)
            if let group = groups.firstIndex(where: { $0.shard == shard && $0.worker == move.worker }) {
                groups[group].indices.append(index)
            } else {
                groups.append((shard, move.worker, [index]))
            }
        }
        let replies = try redis.pipeline(calls: groups.map { group in
            let shard = keys.shard(group.shard)
            return .script(QueueScripts.ack,
                           keys: [shard.processing(group.worker), shard.done, shard.stats, shard.movedAt, shard.movedPerMinute]
                               + group.indices.map { shard.job(moves[$0].id.cid) },
                           arguments: [group.worker] + group.indices.flatMap { index -> [any RedisArgumentConvertible] in
                               let move = moves[index]
                               return [move.id.description, move.token, move.checksum, move.bytes, move.foundIn ?? ""]
                           })
        })
        let address = redis.url.address
        var acknowledged = Array(repeating: Result<Bool, RedisError>.failure(malformed(address, "ack.lua")), count: moves.count)
        for (group, reply) in zip(groups, replies) {
            let items: [RedisReply]
            do {
                items = try reply.throwingServerError(address: address, command: "EVALSHA ack.lua").array ?? []
                guard items.count == group.indices.count else { throw malformed(address, "ack.lua") }
            } catch {
                // The whole group refused (its node's error): each of its moves fails alone.
                let failure = error as? RedisError ?? malformed(address, "ack.lua")
                for index in group.indices { acknowledged[index] = .failure(failure) }
                continue
            }
            for (index, item) in zip(group.indices, items) {
                if case .error(let message) = item {
                    acknowledged[index] = .failure(RedisError(code: .server, address: address, command: "EVALSHA ack.lua", message: message))
                } else {
                    acknowledged[index] = .success(item.int == 1)
                }
            }
        }
        return acknowledged
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
}
