import RedisClient
import RelocatorCore

extension JobQueue {
    /// The level label of an id whose job hash is gone (expired, or purged meanwhile).
    public static var unknownLevel: String { JobsByLevel.unknownLevel }

    /// Every job id in the queues, processing, retry, deferred, dead, done and committing lists of
    /// every shard, counted by its target level. `known` maps `shard/id` to a target read before
    /// (an id's target never changes: re-aiming or reversing a job gives it a new id), so only new
    /// ids cost a read; the map returned holds the ids seen this time. One pipeline per shard to
    /// list the ids and one more for the targets of new ids.
    public func jobsByLevel(levels: [String], known: [String: String], on redis: RedisConnection) throws -> (JobsByLevel, [String: String]) {
        let workers = (try redis.send("SMEMBERS", keys.control.workers).array?.compactMap(\.string) ?? []).sorted()
        var result = JobsByLevel()
        var targets: [String: String] = [:]
        for shard in keys.shards {
            var lists: [(JobsByLevel.State, RedisCommand)] = [
                (.retry, RedisCommand("ZRANGE", shard.retry, 0, -1)), (.deferred, RedisCommand("ZRANGE", shard.deferred, 0, -1)),
                (.dead, RedisCommand("LRANGE", shard.dead, 0, -1)), (.done, RedisCommand("LRANGE", shard.done, 0, -1)),
            ]
            for worker in workers {
                lists.append((.processing, RedisCommand("LRANGE", shard.processing(worker), 0, -1)))
                lists.append((.committing, RedisCommand("LRANGE", shard.committing(worker), 0, -1)))
            }
            var commands = lists.map(\.1)
            for level in levels {
                commands.append(RedisCommand("LLEN", shard.queue(level)))
                commands.append(RedisCommand("LINDEX", shard.queue(level), -1))
            }
            // Ages are measured on the queue's clock, which stamped the jobs (not this host's).
            commands.append(RedisCommand("TIME"))
            let replies = try redis.pipeline(commands).map { try $0.throwingServerError(address: redis.url.address, command: "JOBS BY LEVEL") }
            let now = Self.milliseconds(ofTime: replies[replies.count - 1]) ?? Self.nowMilliseconds()
            for (position, level) in levels.enumerated() {
                let depth = replies[lists.count + 2 * position].int ?? 0
                result.counts[.init(.queued, level, shard.index), default: 0] += depth
                if let oldest = replies[lists.count + 2 * position + 1].string.flatMap(JobID.init) {
                    result.oldest[.init(.queued, level, shard.index)] = max(0, now.saturatingSubtract(oldest.gen))
                }
            }
            var ids: [(JobsByLevel.State, String)] = []
            for (index, (state, _)) in lists.enumerated() {
                for id in replies[index].array?.compactMap(\.string) ?? [] { ids.append((state, id)) }
            }
            let unread = Array(Set(ids.map(\.1).filter { known["\(shard.index)/\($0)"] == nil }))
            var read: [String: String] = [:]
            if !unread.isEmpty {
                let parsed = unread.map { ($0, JobID($0)) }
                let calls = parsed.compactMap { id, job in job.map { RedisCommand("HMGET", shard.job($0.cid), JobField.target.rawValue, JobField.gen.rawValue) } }
                let answers = try redis.pipeline(calls)
                var answer = answers.makeIterator()
                for (id, job) in parsed {
                    guard let job, let fields = answer.next()?.array else {
                        read[id] = Self.unknownLevel
                        continue
                    }
                    let target = fields.first?.string
                    // Cached only while the hash is this id's: a stale id is read again next time.
                    read[id] = target ?? Self.unknownLevel
                    if let target, fields.count > 1, fields[1].string == String(job.gen) { targets["\(shard.index)/\(id)"] = target }
                }
            }
            for (state, id) in ids {
                let level = known["\(shard.index)/\(id)"] ?? read[id] ?? Self.unknownLevel
                if let cached = known["\(shard.index)/\(id)"] { targets["\(shard.index)/\(id)"] = cached }
                result.counts[.init(state, level, shard.index), default: 0] += 1
            }
        }
        return (result, targets)
    }
}
