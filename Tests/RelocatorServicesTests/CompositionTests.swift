import RedisClient
import RelocatorApp
import RelocatorCore
@testable import RelocatorServices
import Testing

/// The composition root's pure parts: the line for a server out of reach, the replicas asked for.
@Suite struct CompositionTests {
    @Test func aServerOutOfReachIsNamedWithoutTheCommand() {
        for code in [RedisError.Code.connection, .timeout, .authentication, .closed] {
            let error = RedisError(code: code, address: "127.0.0.1:6379", command: "EVALSHA take.lua", message: "cannot connect: Connection refused")
            #expect(Composition.unreachableServerLine(error) == "redis 127.0.0.1:6379: cannot connect: Connection refused", "\(code)")
        }
    }

    @Test func anyOtherErrorHasNoServerLine() {
        #expect(Composition.unreachableServerLine(RedisError(code: .server, address: "a:1", command: "GET", message: "WRONGTYPE")) == nil)
        #expect(Composition.unreachableServerLine(AppError.unknownContent(5)) == nil)
    }

    @Test func theReplicasAskedForBecomeTheWritesReplication() throws {
        let servers = Composition.Servers(redis: .default, replicas: (2, .milliseconds(500)), keys: try KeySchema(), database: .defaultSQLite)
        #expect(servers.replication == RedisReplication(replicas: 2, timeout: .milliseconds(500)))
        let none = Composition.Servers(redis: .default, keys: try KeySchema(), database: .defaultSQLite)
        #expect(none.replication == nil)
    }
}
