import RedisClient
import RelocatorCore

extension JobQueue {
    // MARK: - Statistics

    /// Depths, ages and totals of every shard and the workers' state, for `status`, `/v1/queues`,
    /// the metrics and the dashboard (one pipeline per shard and one for the control slot).
    public func stats(levels: [String], on redis: RedisConnection) throws -> QueueStats {
        let control = keys.control
        let workers = (try redis.send("SMEMBERS", control.workers).array?.compactMap(\.string) ?? []).sorted()
        let paused = try self.paused(on: redis)
        var stats = QueueStats(levels: levels.map { QueueStats.Level(level: $0, paused: paused.contains($0)) })
        var heldBy: [String: Int] = [:]
        for shard in keys.shards {
            // Ages are measured on the queue's clock, which stamped the jobs (not this host's).
            var commands: [RedisCommand] = [RedisCommand("TIME")]
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
            let now = Self.milliseconds(ofTime: replies[0]) ?? Self.nowMilliseconds()
            if stats.clockMilliseconds == nil { stats.clockMilliseconds = Self.milliseconds(ofTime: replies[0]) }
            var index = 1
            for position in levels.indices {
                stats.levels[position].depth += replies[index].int ?? 0
                if let oldest = replies[index + 1].string.flatMap(JobID.init) {
                    let age = max(0, now.saturatingSubtract(oldest.gen))
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

    func malformed(_ address: String, _ script: String) -> RedisError {
        RedisError(code: .protocolViolation, address: address, command: "EVALSHA \(script)", message: "unexpected reply from \(script)")
    }
}
