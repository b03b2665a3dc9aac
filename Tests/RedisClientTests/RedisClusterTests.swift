import Foundation
@testable import RedisClient
import RelocatorCore
import Testing
import TestSupport

/// Against the shared Redis Cluster that `Scripts/services start redis-cluster` started (3 masters,
/// 3 replicas); each test in its own key prefix. Nothing here kills, fails over or reshards a node.
@Suite struct RedisClusterTests {
    let prefix = TestEnvironment.uniqueName("cluster")

    func connection(commandTimeout: Duration = .seconds(5)) throws -> RedisConnection {
        RedisConnection(url: try TestEnvironment.redisClusterURL(), commandTimeout: commandTimeout)
    }

    /// Keys spread over many slots: `<prefix>:<i>`.
    func keys(_ count: Int) -> [String] { (0..<count).map { "\(prefix):\($0)" } }

    func cleanUp(_ redis: RedisConnection, _ keys: [String]) throws {
        let replies = try redis.pipeline(keys.map { RedisCommand("DEL", $0) })
        for reply in replies { _ = try reply.throwingServerError(address: redis.url.address, command: "DEL") }
    }

    /// The port of the master serving each slot, from CLUSTER SLOTS.
    func owners(_ redis: RedisConnection) throws -> [Int: Int] {
        var result: [Int: Int] = [:]
        for range in try redis.send("CLUSTER", "SLOTS").array ?? [] {
            guard let items = range.array, let start = items[0].int, let end = items[1].int, let port = items[2].array?[1].int else {
                Issue.record("unexpected CLUSTER SLOTS entry \(range)")
                continue
            }
            for slot in start...end { result[slot] = port }
        }
        return result
    }

    @Test func slotsComputedHereMatchTheServers() throws {
        let redis = try connection()
        var samples = keys(500) + ["123456789", "{user1000}.following", "foo{}{bar}", "foo{{bar}}zap", "{}", "é{ü}x", ""]
        samples += (0..<50).map { "{\(prefix)}:\($0)" }
        let replies = try redis.pipeline(samples.map { RedisCommand("CLUSTER", "KEYSLOT", $0) })
        for (key, reply) in zip(samples, replies) {
            #expect(reply.int == RedisSlot.of(key: key), "slot of '\(key)'")
        }
    }

    @Test func commandsAndScriptsReachTheMasterOfEveryKeysSlot() throws {
        let redis = try connection()
        let keys = keys(300)
        defer { #expect(throws: Never.self) { try cleanUp(redis, keys) } }
        for (index, key) in keys.enumerated() { try redis.send("SET", key, index) }
        for (index, key) in keys.enumerated() { #expect(try redis.send("GET", key).int == index) }

        // Each key lives on the master of its slot: asked directly, that node has it.
        let owners = try owners(redis)
        let byMaster = Dictionary(grouping: keys) { owners[RedisSlot.of(key: $0)]! }
        #expect(byMaster.count == 3)
        for (port, keys) in byMaster {
            let node = RedisConnection(url: RedisURL(host: "127.0.0.1", port: port))
            #expect(try node.pipeline(keys.map { RedisCommand("EXISTS", $0) }) == keys.map { _ in .integer(1) })
        }

        // A script new to every node: loaded where it was missing, named by the SHA1 computed here.
        let script = RedisScript("redis.call('INCRBY', KEYS[1], ARGV[1]) return redis.call('GET', KEYS[1]) -- \(prefix)")
        for (index, key) in keys.enumerated() {
            #expect(try redis.evalScript(script, keys: [key], arguments: [1000]).int == index + 1000)
        }
        for port in byMaster.keys {
            let node = RedisConnection(url: RedisURL(host: "127.0.0.1", port: port))
            #expect(try node.send("SCRIPT", "EXISTS", script.sha1) == .array([.integer(1)]))
        }
    }

    @Test func aPipelineSpanningAllMastersKeepsItsOrder() throws {
        let redis = try connection()
        let keys = keys(400)
        defer { #expect(throws: Never.self) { try cleanUp(redis, keys) } }
        var commands: [RedisCommand] = []
        var expected: [RedisReply] = []
        for (index, key) in keys.enumerated() {
            commands += [RedisCommand("SET", key, index), RedisCommand("INCR", key), RedisCommand("GET", key)]
            expected += [.status("OK"), .integer(Int64(index + 1)), .bulk(Array(String(index + 1).utf8))]
            if index % 100 == 0 {
                commands.append(RedisCommand("PING"))  // no key: any master
                expected.append(.status("PONG"))
            }
        }
        try redis.connect()  // loads the slot map
        #expect(Set(keys.compactMap { redis.clusterMaster(ofSlot: RedisSlot.of(key: $0)) }).count == 3)
        func batches() -> [String: Int] {
            Dictionary(uniqueKeysWithValues: redis.router.nodeConnections.map { ($0.address, $0.batchesSent) })
        }
        let before = batches()
        let replies = try redis.pipeline(commands)
        #expect(replies == expected)
        // One round trip to each of the three masters.
        let after = batches()
        #expect(after.count == 3)
        #expect(after.allSatisfy { $0.value - (before[$0.key] ?? 0) == 1 })
    }

    @Test func pipelinedScriptCallsAreLoadedOnEachNodeAndKeepTheirOrder() throws {
        let redis = try connection()
        let keys = keys(90)
        defer { #expect(throws: Never.self) { try cleanUp(redis, keys) } }
        let script = RedisScript("return redis.call('RPUSH', KEYS[1], ARGV[1]) -- \(prefix)")
        let calls: [RedisCall] = keys.enumerated().flatMap { index, key -> [RedisCall] in
            [.script(script, keys: [key], arguments: [index]), .command(RedisCommand("LRANGE", key, 0, -1))]
        }
        let replies = try redis.pipeline(calls: calls)
        for (index, _) in keys.enumerated() {
            #expect(replies[2 * index] == .integer(1))
            #expect(replies[2 * index + 1] == .array([.bulk(Array(String(index).utf8))]))
        }
        // An error inside the script names the script and stays in place.
        let failing = RedisScript("return redis.call('INCR', KEYS[1]) -- \(prefix) failing", name: "failing.lua")
        let mixed = try redis.pipeline(calls: [.script(failing, keys: [keys[0]], arguments: []), .command(RedisCommand("PING"))])
        guard case .error(let message) = mixed[0] else {
            Issue.record("expected an error, got \(mixed[0])")
            return
        }
        #expect(message.contains("failing.lua:1"))
        #expect(mixed[1] == .status("PONG"))
    }

    @Test func aBlockingPopIsRoutedByItsKey() throws {
        let redis = try connection()
        let queue = "{\(prefix)}:queue", processing = "{\(prefix)}:processing"
        defer { #expect(throws: Never.self) { try cleanUp(redis, [queue, processing]) } }
        try redis.send("LPUSH", queue, "job-1")
        #expect(try redis.sendBlocking(RedisCommand("BRPOPLPUSH", queue, processing, 1), block: .seconds(1)).string == "job-1")
        #expect(try redis.sendBlocking(RedisCommand("BRPOPLPUSH", queue, processing, 1), block: .seconds(1)) == .null)
        #expect(try redis.send("LRANGE", processing, 0, -1) == .array([.bulk(Array("job-1".utf8))]))
    }

    @Test func aCommandOverSeveralSlotsGetsTheServersCrossSlotError() throws {
        let redis = try connection()
        let keys = ["\(prefix):a", "\(prefix):b"]
        #expect(RedisSlot.common(keys) == nil)
        #expect {
            try redis.send("MGET", keys[0], keys[1])
        } throws: { error in
            guard let error = error as? RedisError else { return false }
            return error.code == .server && error.message.hasPrefix("CROSSSLOT") && error.command == "MGET"
                && error.address.hasPrefix("127.0.0.1:") && !error.description.contains(keys[0])
        }
    }

    @Test func seedsThatAreDownAreSkipped() throws {
        var url = try TestEnvironment.redisClusterURL()
        url.endpoints.insert(RedisURL.Endpoint(host: "127.0.0.1", port: try freeLoopbackPort()), at: 0)
        let redis = RedisConnection(url: url)
        try redis.connect()
        #expect(redis.isConnected)
        #expect(try redis.send("PING") == .status("PONG"))
        let key = "\(prefix):seed"
        try redis.send("SET", key, "v")
        #expect(try redis.send("GET", key).string == "v")
        try cleanUp(redis, [key])
    }

    @Test func aClusterNobodyAnswersFailsWithinTheCommandTimeout() throws {
        let url = RedisURL(clusterSeeds: [RedisURL.Endpoint(host: "127.0.0.1", port: try freeLoopbackPort())])
        let redis = RedisConnection(url: url, commandTimeout: .milliseconds(300))
        #expect {
            try redis.send("GET", "k")
        } throws: { error in
            guard let error = error as? RedisError else { return false }
            return error.code == .connection && error.address.hasPrefix("cluster 127.0.0.1:") && error.command == "GET"
                && error.message.contains("slot map")
        }
    }
}
