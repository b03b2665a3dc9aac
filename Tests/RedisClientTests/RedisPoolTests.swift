import Foundation
import RedisClient
import RelocatorCore
import Testing
import TestSupport

@Suite struct RedisPoolTests {
    @Test func concurrentCallersShareAFewConnections() async throws {
        let server = try RedisServer()
        let pool = RedisPool(url: server.url, size: 3)
        defer { pool.close() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<200 {
                group.addTask {
                    try await pool.send("INCR", "counter")
                }
            }
            try await group.waitForAll()
        }
        #expect(try await pool.send("GET", "counter").int == 200)
        // Only the pool's own connections (at most 3) plus the one asking.
        let clients = try await pool.send("CLIENT", "LIST").string ?? ""
        #expect(clients.split(separator: "\n").count <= 3)
    }

    @Test func aBlockedCallerDoesNotStopTheOthers() async throws {
        let server = try RedisServer()
        let pool = RedisPool(url: server.url, size: 2)
        defer { pool.close() }
        async let blocked = pool.withConnection { try $0.sendBlocking(RedisCommand("BLPOP", "nothing", 1), block: .seconds(1)) }
        // The second connection keeps serving while the first waits on the server.
        for index in 0..<50 { try await pool.send("SET", "k\(index)", index) }
        #expect(try await pool.send("DBSIZE") == .integer(50))
        #expect(try await blocked == .null)
    }

    @Test func scriptsThroughThePool() async throws {
        let server = try RedisServer()
        let pool = RedisPool(url: server.url, size: 2)
        defer { pool.close() }
        let script = RedisScript("redis.call('SET', KEYS[1], ARGV[1]); return redis.call('GET', KEYS[1])")
        #expect(try await pool.evalScript(script, keys: ["a"], arguments: ["1"]).string == "1")
        try await pool.send("SCRIPT", "FLUSH")
        #expect(try await pool.evalScript(script, keys: ["a"], arguments: ["2"]).string == "2")
    }

    @Test func aClosedPoolRefusesWork() async throws {
        let server = try RedisServer()
        let pool = RedisPool(url: server.url, size: 1)
        try await pool.send("PING")
        pool.close()
        await #expect(throws: RedisError.self) { try await pool.send("PING") }
    }
}
