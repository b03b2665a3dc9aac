import Foundation
@testable import RedisClient
import RelocatorCore
import Testing
import TestSupport

/// Against the shared sentinel setup that `Scripts/services start redis-sentinel` started; each test
/// in its own key prefix. Nothing here fails the master over.
@Suite struct RedisSentinelTests {
    let prefix = TestEnvironment.uniqueName("sentinel")

    /// The master as the first sentinel of the URL names it.
    func namedMaster(_ url: RedisURL) throws -> RedisURL.Endpoint {
        let sentinel = RedisConnection(url: RedisURL(host: url.endpoints[0].host, port: url.endpoints[0].port))
        let reply = try sentinel.send("SENTINEL", "get-master-addr-by-name", try #require(url.masterName))
        return RedisURL.Endpoint(host: try #require(reply.array?[0].string), port: try #require(reply.array?[1].int))
    }

    @Test func commandsAndScriptsGoToTheMasterTheSentinelsName() throws {
        let url = try TestEnvironment.redisSentinelURL()
        let redis = RedisConnection(url: url)
        let key = "\(prefix):k"
        try redis.send("SET", key, "v")
        let script = RedisScript("return redis.call('APPEND', KEYS[1], ARGV[1])")
        #expect(try redis.evalScript(script, keys: [key], arguments: ["w"]) == .integer(2))
        #expect(try redis.send("ROLE").array?.first?.string == "master")

        let master = try namedMaster(url)
        let direct = RedisConnection(url: RedisURL(host: master.host, port: master.port))
        #expect(try direct.send("GET", key).string == "vw")
        try direct.send("DEL", key)
    }

    @Test func aSentinelThatIsDownIsSkipped() throws {
        var url = try TestEnvironment.redisSentinelURL()
        url.endpoints.insert(RedisURL.Endpoint(host: "127.0.0.1", port: try freeLoopbackPort()), at: 0)
        let redis = RedisConnection(url: url)
        try redis.connect()
        #expect(redis.isConnected)
        #expect(try redis.send("ROLE").array?.first?.string == "master")
    }

    @Test func anUnknownMasterNameIsAClearError() throws {
        var url = try TestEnvironment.redisSentinelURL()
        url.topology = .sentinel(masterName: "no-such-master")
        let redis = RedisConnection(url: url, commandTimeout: .milliseconds(300))
        #expect {
            try redis.send("PING")
        } throws: { error in
            guard let error = error as? RedisError else { return false }
            return error.code == .connection && error.address == "sentinel no-such-master" && error.command == "PING"
                && error.message.contains("knows no master 'no-such-master'") && !error.message.contains("\n")
        }
    }
}
