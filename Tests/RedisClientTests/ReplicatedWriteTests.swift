import Foundation
@testable import RedisClient
import RelocatorCore
import Testing
import TestSupport

/// `RELOCATOR_REDIS_MIN_REPLICAS`: a write is acknowledged only once `WAIT` on the connection that
/// wrote it confirms the replicas hold it, so a failover loses no acknowledged write, whether the old
/// master was killed or stayed alive. Each test starts its own servers and stops them by PID.
@Suite(.serialized) struct ReplicatedWriteTests {
    @Test func aWriteNoReplicaConfirmsIsAnErrorThatSaysItMayHaveBeenKept() throws {
        let server = try RedisServer()
        let redis = RedisConnection(url: server.url, replication: RedisReplication(replicas: 1, timeout: .milliseconds(200)))
        defer { redis.close() }
        #expect {
            try redis.replicated { try redis.send("SET", "k", "v") }
        } throws: { error in
            guard let error = error as? RedisError else { return false }
            return error.code == .replication && error.command == "WAIT" && error.message.contains("0 confirmed")
        }
        // It ran: WAIT only says whether replicas hold it.
        #expect(try redis.send("GET", "k").string == "v")
        // Without a replica count nothing waits.
        let plain = RedisConnection(url: server.url)
        defer { plain.close() }
        #expect(try plain.replicated { try plain.send("SET", "k", "w") } == .status("OK"))
    }

    @Test func aWriteTheReplicaHoldsIsAcknowledgedAndAWaitGoesToTheConnectionThatWrote() throws {
        let setup = try RedisSentinelServer()
        defer { setup.stop() }
        let redis = RedisConnection(url: setup.url, replication: RedisReplication(replicas: 1, timeout: .seconds(2)))
        defer { redis.close() }
        let script = RedisScript("#!lua\nreturn redis.call('INCR', KEYS[1])")
        #expect(try redis.replicated { try redis.evalScript(script, keys: ["counter"]) } == .integer(1))
        let replicas = try redis.replicated { try redis.pipeline([RedisCommand("INCR", "counter"), RedisCommand("INCR", "counter")]) }
        #expect(replicas == [.integer(2), .integer(3)])
        let replica = try #require(setup.dataPorts.first { $0 != (try? setup.currentMasterPort()) })
        #expect(try setup.cli(replica, "GET", "counter") == "3")
        // The client that wrote is the one WAIT counts for: the server saw WAIT on that connection.
        #expect(RedisProcesses.fields(try setup.cli(try setup.currentMasterPort(), "INFO", "commandstats"))["cmdstat_wait"]?.hasPrefix("calls=2") == true)
    }

    struct StreamOutcome: CustomStringConvertible {
        var acknowledged: [Int] = []
        var failed = 0
        var lost: [Int] = []
        var description: String { "\(acknowledged.count) acknowledged, \(lost.count) of them lost, \(failed) failed" }
    }

    /// Writes `<tag>:<i>` through `replicated` one at a time; `event` after 200 writes; goes on until
    /// `over()` holds and 200 more were acknowledged; then reads every acknowledged key back.
    func streamOfReplicatedWrites(_ redis: RedisConnection, reader: RedisConnection, tag: String, event: () throws -> Void,
                                  over: () throws -> Bool) throws -> StreamOutcome {
        var outcome = StreamOutcome()
        var overAt: Int?
        let deadline = ContinuousClock.now + .seconds(120)
        var index = 0
        while ContinuousClock.now < deadline {
            if index == 200 { try event() }
            if index > 200, overAt == nil, index % 20 == 0, try over() { overAt = index }
            if let start = overAt, outcome.acknowledged.filter({ $0 > start }).count >= 200 { break }
            do {
                try redis.replicated { try redis.send("SET", "{\(tag):\(index)}", index) }
                outcome.acknowledged.append(index)
            } catch is RedisError {
                outcome.failed += 1
            }
            index += 1
        }
        _ = try #require(overAt, "the failover did not complete")
        let replies = try reader.pipeline(outcome.acknowledged.map { RedisCommand("GET", "{\(tag):\($0)}") })
        outcome.lost = zip(outcome.acknowledged, replies).filter { $0.1.int != $0.0 }.map(\.0)
        return outcome
    }

    /// The old master stays alive: Sentinel promotes the replica first and demotes the old master
    /// seconds later. Without WAIT, what the old master acknowledged in between is dropped (350 of
    /// 64,401 in one run); with it, those writes are not acknowledged.
    @Test func aSentinelFailoverWithTheOldMasterAliveLosesNoAcknowledgedWrite() throws {
        let setup = try RedisSentinelServer()
        defer { setup.stop() }
        let redis = RedisConnection(url: setup.url, replication: RedisReplication(replicas: 1, timeout: .milliseconds(500)))
        defer { redis.close() }
        let oldMaster = try setup.currentMasterPort()
        let replica = try #require(setup.dataPorts.first { $0 != oldMaster })
        let outcome = try streamOfReplicatedWrites(redis, reader: RedisConnection(url: setup.url), tag: "sf", event: {
            try RedisProcesses.cli(port: setup.sentinelPorts[0], ["SENTINEL", "FAILOVER", setup.masterName])
        }, over: {
            try setup.serves(asReplica: oldMaster) && (try setup.currentMasterPort()) == replica
        })
        print("SENTINEL FAILOVER, old master alive, WAIT 1: \(outcome)")
        #expect(outcome.lost.isEmpty, "lost \(outcome.lost)")
    }

    /// `CLUSTER FAILOVER FORCE`: the replica takes over without its master handing over its last
    /// writes; the old master accepts writes until it learns of it.
    @Test func aForcedClusterFailoverLosesNoAcknowledgedWrite() throws {
        let cluster = try RedisClusterServer()
        defer { cluster.stop() }
        let redis = RedisConnection(url: cluster.url, replication: RedisReplication(replicas: 1, timeout: .milliseconds(500)))
        defer { redis.close() }
        let master = cluster.initialMasters[0]
        var replica = 0
        let outcome = try streamOfReplicatedWrites(redis, reader: RedisConnection(url: cluster.url), tag: "ff", event: {
            replica = try cluster.failover(replicaOf: master, wait: false, force: true)
        }, over: {
            try cluster.nodes().contains { $0.port == replica && $0.isMaster && !$0.slots.isEmpty }
                && (try cluster.nodes().contains { $0.port == master && !$0.isMaster })
        })
        print("CLUSTER FAILOVER FORCE, WAIT 1: \(outcome)")
        #expect(outcome.lost.isEmpty, "lost \(outcome.lost)")
    }
}
