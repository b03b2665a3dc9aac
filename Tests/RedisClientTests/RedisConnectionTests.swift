import Foundation
import RedisClient
import RelocatorCore
import Testing
import TestSupport

/// Against the Redis that Scripts/test started; each test in its own key prefix.
@Suite struct RedisConnectionTests {
    let prefix = TestEnvironment.uniqueName("test") + ":"

    func connection() throws -> RedisConnection {
        RedisConnection(url: try TestEnvironment.redisURL())
    }

    func cleanUp(_ redis: RedisConnection) throws {
        let keys = try redis.send("KEYS", prefix + "*").array ?? []
        if !keys.isEmpty { try redis.send(RedisCommand(["DEL"] + keys.compactMap(\.string))) }
    }

    @Test func everyReplyType() throws {
        let redis = try connection()
        defer { try? cleanUp(redis) }
        let binary: [UInt8] = [0x61, 0x00, 0x62, 0xff, 0x0a]
        let replies = try redis.pipeline([
            RedisCommand("SET", prefix + "s", "héllo"),                        // status
            RedisCommand("GET", prefix + "s"),                                 // bulk
            RedisCommand("SET", prefix + "bin", binary),
            RedisCommand("GET", prefix + "bin"),                               // binary-safe bulk
            RedisCommand("INCRBY", prefix + "n", 41),                          // integer
            RedisCommand("GET", prefix + "missing"),                           // nil bulk
            RedisCommand("RPUSH", prefix + "l", "a", "", "c"),
            RedisCommand("LRANGE", prefix + "l", 0, -1),                       // array, with an empty bulk
            RedisCommand("LRANGE", prefix + "none", 0, -1),                    // empty array
            RedisCommand("EVAL", "return {1, {'x', {}}, redis.status_reply('FINE')}", 0), // nested
            RedisCommand("NOSUCHCOMMAND"),                                     // error
            RedisCommand("BLPOP", prefix + "empty", "0.01"),                   // nil array
        ])
        #expect(replies[0] == .status("OK"))
        #expect(replies[1] == .bulk(Array("héllo".utf8)))
        #expect(replies[1].string == "héllo")
        #expect(replies[3] == .bulk(binary))
        #expect(replies[4] == .integer(41))
        #expect(replies[5] == .null)
        #expect(replies[7] == .array([.bulk([0x61]), .bulk([]), .bulk([0x63])]))
        #expect(replies[8] == .array([]))
        #expect(replies[9] == .array([.integer(1), .array([.bulk([0x78]), .array([])]), .status("FINE")]))
        guard case .error(let message) = replies[10] else {
            Issue.record("expected an error reply, got \(replies[10])")
            return
        }
        #expect(message.contains("unknown command"))
        #expect(replies[11] == .null)
    }

    @Test func sendThrowsAnErrorReplyNamingTheCommand() throws {
        let redis = try connection()
        defer { try? cleanUp(redis) }
        try redis.send("SET", prefix + "s", "text")
        #expect {
            try redis.send("INCR", prefix + "s")
        } throws: { error in
            guard let error = error as? RedisError else { return false }
            return error.code == .server && error.command == "INCR" && error.description.contains("not an integer")
        }
        // The connection is still usable after an error reply.
        #expect(try redis.send("GET", prefix + "s").string == "text")
    }

    @Test func pipelinesAThousandCommandsInOrder() throws {
        let redis = try connection()
        defer { try? cleanUp(redis) }
        let key = prefix + "list"
        let replies = try redis.pipeline((1...1000).map { RedisCommand("RPUSH", key, $0) })
        #expect(replies.count == 1000)
        #expect(replies == (1...1000).map { RedisReply.integer(Int64($0)) })
        #expect(try redis.send("LINDEX", key, 999).string == "1000")
    }

    @Test func theCommandsSentAreCounted() throws {
        let redis = try connection()
        defer { try? cleanUp(redis) }
        _ = try redis.send("PING")
        let before = RedisTraffic.commandsSent
        _ = try redis.pipeline((1...50).map { RedisCommand("RPUSH", prefix + "counted", $0) })
        // Other tests of this process send commands too: at least these 50 were counted.
        #expect(RedisTraffic.commandsSent - before >= 50)
    }

    @Test func evalshaReloadsTheScriptAfterScriptFlush() throws {
        // SCRIPT FLUSH is server-wide: use a private server so other tests' scripts are untouched.
        let server = try RedisServer()
        let redis = RedisConnection(url: server.url)
        let script = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
        #expect(try redis.evalScript(script, keys: ["counter"], arguments: [2]) == .integer(2))
        try redis.send("SCRIPT", "FLUSH")
        #expect(try redis.evalScript(script, keys: ["counter"], arguments: [3]) == .integer(5))
        let sha = try #require(try redis.send("SCRIPT", "LOAD", script.source).string)
        #expect(try redis.send("SCRIPT", "EXISTS", sha) == .array([.integer(1)]))
    }

    @Test func authenticatesAndExplainsAWrongPassword() throws {
        let server = try RedisServer(password: "open-sesame")
        let good = RedisConnection(url: server.url)
        #expect(try good.send("PING") == .status("PONG"))

        var wrongURL = server.url
        wrongURL.password = "not-the-password"
        #expect {
            try RedisConnection(url: wrongURL).send("PING")
        } throws: { error in
            guard let error = error as? RedisError else { return false }
            return error.code == .authentication && error.description.contains("127.0.0.1:\(server.port)")
                && !error.description.contains("not-the-password")
        }

        var noPassword = server.url
        noPassword.password = nil
        #expect {
            try RedisConnection(url: noPassword).send("PING")
        } throws: { error in
            (error as? RedisError)?.code == .authentication
        }
    }

    @Test func selectsTheDatabaseOfTheURL() throws {
        let server = try RedisServer()
        var url = server.url
        url.database = 3
        try RedisConnection(url: url).send("SET", "k", "in-three")
        #expect(try RedisConnection(url: server.url).send("GET", "k") == .null)
        url.database = 3
        #expect(try RedisConnection(url: url).send("GET", "k").string == "in-three")
    }

    @Test func aCommandAfterTheServerRestartedSucceedsThroughReconnect() throws {
        let server = try RedisServer()
        let redis = RedisConnection(url: server.url)
        #expect(try redis.send("SET", "before", "1") == .status("OK"))
        server.stop()
        // While it is down: a clear error naming the server and the command.
        #expect {
            try redis.send("PING")
        } throws: { error in
            guard let error = error as? RedisError else { return false }
            return error.code == .connection && error.description.contains("127.0.0.1:\(server.port)")
                && error.description.contains("PING")
        }
        try server.start()
        #expect(try redis.send("PING") == .status("PONG"))
        // And a connection that was idle across a restart notices before writing.
        let idle = RedisConnection(url: server.url)
        try idle.send("PING")
        server.stop()
        try server.start()
        #expect(try idle.send("SET", "after", "2") == .status("OK"))
    }

    @Test func aBlockingPopWithATimeoutReturnsNilOnTime() throws {
        let redis = try connection()
        defer { try? cleanUp(redis) }
        let start = ContinuousClock.now
        let reply = try redis.sendBlocking(RedisCommand("BRPOPLPUSH", prefix + "queue", prefix + "processing", 1), block: .seconds(1))
        let elapsed = ContinuousClock.now - start
        #expect(reply == .null)
        #expect(elapsed >= .milliseconds(900))
        #expect(elapsed < .seconds(3))
    }

    @Test func aBlockingPopLongerThanTheCommandTimeoutDoesNotKillTheConnection() throws {
        let url = try TestEnvironment.redisURL()
        let redis = RedisConnection(url: url, commandTimeout: .milliseconds(300))
        defer { try? cleanUp(redis) }
        try redis.send("LPUSH", prefix + "q", "job")
        // Blocks for up to 1 s on the server, beyond the 300 ms command timeout: still fine.
        let empty = try redis.sendBlocking(RedisCommand("BRPOPLPUSH", prefix + "other", prefix + "p", 1), block: .seconds(1))
        #expect(empty == .null)
        #expect(try redis.send("RPOPLPUSH", prefix + "q", prefix + "p").string == "job")
    }

    @Test func aSlowReplyTimesOutAndTheNextCommandReconnects() throws {
        let server = try RedisServer()
        let redis = RedisConnection(url: server.url, commandTimeout: .milliseconds(200))
        #expect {
            try redis.send("DEBUG", "SLEEP", "0.6")
        } throws: { error in
            (error as? RedisError)?.code == .timeout
        }
        #expect(!redis.isConnected)
        // The server is still asleep for a while; the same object reconnects once it answers.
        var reply: RedisReply?
        let deadline = ContinuousClock.now + .seconds(5)
        while reply == nil && ContinuousClock.now < deadline {
            reply = try? redis.send("PING")
        }
        #expect(reply == .status("PONG"))
    }

    @Test func aRefusedConnectionNamesTheServer() throws {
        let port = try freeLoopbackPort()
        #expect {
            try RedisConnection(url: RedisURL(host: "127.0.0.1", port: port)).send("GET", "k")
        } throws: { error in
            guard let error = error as? RedisError else { return false }
            return error.code == .connection && error.description.contains("127.0.0.1:\(port)")
                && error.description.lowercased().contains("refused")
        }
    }
}
