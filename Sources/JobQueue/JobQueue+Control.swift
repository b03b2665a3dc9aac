import RedisClient
import RelocatorCore

extension JobQueue {
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

    func setPaused(_ paused: Bool, level: String, on redis: RedisConnection) throws {
        var names = [keys.control.paused]
        for shard in keys.shards where !names.contains(shard.paused) { names.append(shard.paused) }
        // Resumed in the shards first, paused there last: `status` never shows a level running
        // while a shard still holds its pause.
        if !paused { names.reverse() }
        let replies = try redis.pipeline(names.map { RedisCommand(paused ? "SADD" : "SREM", $0, level) })
        for reply in replies { _ = try reply.throwingServerError(address: redis.url.address, command: paused ? "SADD" : "SREM") }
    }
}
