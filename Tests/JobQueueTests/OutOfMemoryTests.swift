import Foundation
@testable import JobQueue
import RedisClient
import RelocatorCore
import Testing
import TestSupport

/// Redis at its `maxmemory` (noeviction) refuses a job script before it runs, so a submission that
/// cannot be kept writes nothing; only the scripts that move or free what exists may run.
@Suite struct OutOfMemoryTests {
    /// The scripts that may run while Redis refuses writes: they take nothing new (an ack, a commit,
    /// a purge or replay, ids handed back, a worker forgotten, due jobs found, with the few bytes
    /// of the caller's announced wait).
    static let allowedOutOfMemory: Set<String> = [
        "ack.lua", "committed.lua", "dead-action.lua", "handback.lua", "take-done.lua", "giveback.lua", "forget-worker.lua",
        "unlease.lua", "due.lua",
    ]

    @Test func everyScriptDeclaresItsFlagsOnItsFirstLineAheadOfTheHelpers() throws {
        for script in QueueScripts.all {
            let first = script.source.prefix { $0 != "\n" }
            #expect(first.hasPrefix("#!lua"), "\(script.name) starts with '\(first)'")
            let flags = Set(try #require(script.flags, "\(script.name) has no shebang"))
            if Self.allowedOutOfMemory.contains(script.name) {
                #expect(flags == ["allow-oom"], "\(script.name): \(flags)")
            } else {
                #expect(flags.isEmpty, "\(script.name) may not run out of memory: \(flags)")
            }
            // The helpers follow the shebang, so Redis reads the flags and the helpers still run first.
            let second = script.source.split(separator: "\n", omittingEmptySubsequences: false)[1]
            #expect(second.hasPrefix("-- Shared by every script"), "\(script.name): \(second)")
        }
    }

    /// Redis numbers the lines of the whole source: the shebang is the body's line 1, the helpers
    /// come next, and an error still names the file and line a reader opens.
    @Test func anErrorStillNamesItsFileAndLineBehindAShebang() {
        let script = RedisScript(name: "body.lua", body: "#!lua\nlocal a = 1\nerror('x')\n", preludeName: "helpers.lua",
                                 prelude: "local h = 1\nlocal i = 2\n")
        #expect(script.source == "#!lua\nlocal h = 1\nlocal i = 2\nlocal a = 1\nerror('x')\n")
        #expect(script.translate("at user_script:1:") == "at body.lua:1:")
        #expect(script.translate("at user_script:2: and user_script:3:") == "at helpers.lua:1: and helpers.lua:2:")
        #expect(script.translate("at user_script:5:") == "at body.lua:3:")
    }

    @Test func aWritingScriptIsRefusedBeforeItRunsWhileRedisIsOverItsMaxmemory() throws {
        let server = try RedisServer()
        let q = try QueueFixture(url: server.url)
        defer { q.cleanUp() }
        // A job a worker was moving when memory ran out.
        try q.submit(1, to: "gold")
        let moving = try #require(try q.fetch())
        let before = try q.redis.send("HGETALL", q.shard.job(1))
        try RedisMemory.fill(port: server.port)

        // On this server (Redis 7), a script without flags is refused only at its first write that
        // adds memory: a DEL first goes through, and the writes after it too.
        let unflagged = RedisScript("redis.call('DEL', KEYS[1]) redis.call('HSET', KEYS[1], 'written', 'yes') return 1")
        #expect(try q.redis.evalScript(unflagged, keys: [q.shard.job(99)]) == .integer(1))
        #expect(try q.redis.send("HGET", q.shard.job(99), "written").string == "yes")
        try q.redis.send("DEL", q.shard.job(99))

        // Every job script that may add memory is refused before its first line.
        let keys = [q.shard.job(7), q.shard.queue("gold"), q.shard.retry, q.shard.deferred, q.shard.dead, q.shard.gens,
                    q.shard.movedAt, q.shard.residents("bronze")]
        for script in QueueScripts.all where !Self.allowedOutOfMemory.contains(script.name) && script.name != "due.lua" {
            do {
                try q.redis.evalScript(script, keys: keys, arguments: ["7", "1", "x", "bronze", "gold", "-1", "0", ""])
                Issue.record("\(script.name) ran while Redis was out of memory")
            } catch let error as RedisError {
                #expect(error.isOutOfMemory && error.isTransientServerState, "\(script.name): \(error)")
            }
        }
        // A new job writes nothing; an existing one stays as it was.
        #expect(throws: RedisError.self) { try q.submit(2, to: "gold") }
        #expect(throws: RedisError.self) { try q.submit(1, to: "silver") }
        #expect(try q.redis.send("EXISTS", q.shard.job(2)) == .integer(0))
        #expect(try q.list(q.shard.queue("gold")).isEmpty)
        #expect(try q.list(q.shard.queue("silver")).isEmpty)
        #expect(try q.redis.send("HGETALL", q.shard.job(1)) == before)
        #expect(throws: RedisError.self) { try q.queue.checkWritable(on: q.redis) }
        // The scripts that only move what exists still run: the move in flight is acknowledged.
        #expect(try q.queue.ack(JobID(cid: moving.cid, gen: moving.gen), worker: "w1", token: moving.deliveryToken, checksum: "xxh128:00", bytes: 1, foundIn: nil,
                                on: q.redis))
        #expect(try q.job(1)?.status == .done)

        try RedisMemory.release(port: server.port)
        try q.queue.checkWritable(on: q.redis)
        #expect(try q.submit(2, to: "gold").outcome == .created)
    }
}
