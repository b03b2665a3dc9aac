import Foundation
@testable import RedisClient
import RelocatorCore
import Testing
import TestSupport

/// Each test starts its own cluster or sentinel setup (TestSupport), reshards, fails over or kills
/// nodes, and stops every process by PID. Serialized: failure detection is timing-sensitive and each
/// setup is several processes on a 2-core machine.
@Suite(.serialized) struct RedisFailoverTests {
    // MARK: - Cluster: resharding

    /// Moves `slot` from the master on `source` to the one on `target`, the way `redis-cli --cluster
    /// reshard` does. With `finish: false` it stops half-way (the slot migrating, `keys` moved).
    func migrate(_ cluster: RedisClusterServer, slot: Int, from source: Int, to target: Int, keys: [String]?, finish: Bool) throws {
        let sourceID = try cluster.nodeID(source), targetID = try cluster.nodeID(target)
        try cluster.cli(target, "CLUSTER", "SETSLOT", String(slot), "IMPORTING", sourceID)
        try cluster.cli(source, "CLUSTER", "SETSLOT", String(slot), "MIGRATING", targetID)
        let moving = try keys ?? cluster.cli(source, "CLUSTER", "GETKEYSINSLOT", String(slot), "1000")
            .split(whereSeparator: \.isNewline).map(String.init)
        if !moving.isEmpty {
            try RedisProcesses.cli(port: source, ["MIGRATE", "127.0.0.1", String(target), "", "0", "5000"]
                                   + (cluster.password.map { ["AUTH", $0] } ?? []) + ["KEYS"] + moving)
        }
        if finish {
            for port in [target, source] + cluster.initialMasters.filter({ $0 != source && $0 != target }) {
                try cluster.cli(port, "CLUSTER", "SETSLOT", String(slot), "NODE", targetID)
            }
        }
    }

    @Test func aMovedSlotIsFollowedAndTheMapUpdated() throws {
        let cluster = try RedisClusterServer(masters: 3, replicasPerMaster: 0)
        defer { cluster.stop() }
        let redis = RedisConnection(url: cluster.url)
        let key = "{moving}:value", slot = RedisSlot.of(key: key)
        try redis.send("SET", key, "before")
        let source = try cluster.master(ofSlot: slot)
        #expect(redis.clusterMaster(ofSlot: slot)?.port == source)
        let target = try #require(cluster.initialMasters.first { $0 != source })

        try migrate(cluster, slot: slot, from: source, to: target, keys: nil, finish: true)

        // The client still thinks `source` serves the slot: it gets MOVED and follows it.
        #expect(try redis.send("GET", key).string == "before")
        #expect(redis.clusterMaster(ofSlot: slot)?.port == target)
        try redis.send("SET", key, "after")
        let direct = RedisConnection(url: cluster.nodeURL(target))
        #expect(try direct.send("GET", key).string == "after")
        // A pipeline with a stale map redoes the redirected commands in place.
        let stale = RedisConnection(url: cluster.url)
        try stale.send("PING")
        try migrate(cluster, slot: slot, from: target, to: source, keys: nil, finish: true)
        let replies = try stale.pipeline([RedisCommand("GET", key), RedisCommand("PING"), RedisCommand("APPEND", key, "!")])
        #expect(replies == [.bulk(Array("after".utf8)), .status("PONG"), .integer(6)])
    }

    @Test func anAskRedirectDuringAMigrationIsFollowedOnceWithoutChangingTheMap() throws {
        let cluster = try RedisClusterServer(masters: 3, replicasPerMaster: 0)
        defer { cluster.stop() }
        let redis = RedisConnection(url: cluster.url)
        let moved = "{migrating}:moved", stays = "{migrating}:stays", created = "{migrating}:created"
        let slot = RedisSlot.of(key: moved)
        try redis.send("SET", moved, "m")
        try redis.send("SET", stays, "s")
        let source = try cluster.master(ofSlot: slot)
        let target = try #require(cluster.initialMasters.first { $0 != source })

        // Half-way: the slot is migrating and only `moved` is on the target.
        try migrate(cluster, slot: slot, from: source, to: target, keys: [moved], finish: false)

        #expect(try redis.send("GET", moved).string == "m")            // ASK → ASKING + GET on the target
        #expect(try redis.send("GET", stays).string == "s")            // still answered by the source
        #expect(try redis.send("SET", created, "c") == .status("OK"))  // a new key goes to the target
        #expect(redis.clusterMaster(ofSlot: slot)?.port == source)     // ASK does not change the map
        let onTarget = try RedisConnection(url: cluster.nodeURL(target))
            .pipeline([RedisCommand("ASKING"), RedisCommand("EXISTS", created), RedisCommand("ASKING"), RedisCommand("EXISTS", moved)])
        #expect(onTarget == [.status("OK"), .integer(1), .status("OK"), .integer(1)])
        // A pipeline meets the same redirects and keeps its order.
        #expect(try redis.pipeline([RedisCommand("GET", stays), RedisCommand("GET", moved), RedisCommand("GET", created)])
            == [.bulk(Array("s".utf8)), .bulk(Array("m".utf8)), .bulk(Array("c".utf8))])

        // Finishing the migration turns the next reply into MOVED, and the map follows.
        try migrate(cluster, slot: slot, from: source, to: target, keys: [stays], finish: true)
        #expect(try redis.send("GET", stays).string == "s")
        #expect(redis.clusterMaster(ofSlot: slot)?.port == target)
    }

    @Test func aMultiKeyCommandWaitsOutTryAgainUntilTheMigrationEnds() throws {
        let cluster = try RedisClusterServer(masters: 3, replicasPerMaster: 0)
        defer { cluster.stop() }
        let moved = "{split}:moved", stays = "{split}:stays"
        let slot = RedisSlot.of(key: moved)
        let redis = RedisConnection(url: cluster.url, commandTimeout: .seconds(30))
        try redis.send("MSET", moved, "m", stays, "s")
        let source = try cluster.master(ofSlot: slot)
        let target = try #require(cluster.initialMasters.first { $0 != source })
        try migrate(cluster, slot: slot, from: source, to: target, keys: [moved], finish: false)

        // The keys are split between two nodes: the source answers TRYAGAIN until the migration ends.
        let both = BlockingExecutor.shared.start { try redis.send("MGET", moved, stays) }
        func mgetTries() throws -> Int {
            let stats = RedisProcesses.fields(try cluster.cli(source, "INFO", "commandstats"))["cmdstat_mget"] ?? ""
            return stats.split(separator: ",").reduce(0) { total, item in
                item.hasPrefix("rejected_calls=") || item.hasPrefix("calls=") ? total + (Int(item.split(separator: "=")[1]) ?? 0) : total
            }
        }
        try RedisProcesses.waitUntil("MGET to be tried again") { try mgetTries() >= 3 }
        try migrate(cluster, slot: slot, from: source, to: target, keys: [stays], finish: true)
        #expect(try both.wait() == .array([.bulk(Array("m".utf8)), .bulk(Array("s".utf8))]))
    }

    // MARK: - Cluster: failovers during a stream of writes

    struct StreamOutcome: CustomStringConvertible {
        var acknowledged: [Int] = []
        var failed: [Int] = []
        /// Acknowledged writes that started after the failover was complete.
        var acknowledgedAfterFailover: [Int] = []
        var lost: [Int] = []
        var lostAfterFailover: [Int] = []
        var failedButApplied: [Int] = []
        /// The first failure's error, for the measurement line.
        var firstFailure: String?

        var description: String {
            "\(acknowledged.count) writes acknowledged (\(acknowledgedAfterFailover.count) after the failover), "
                + "\(lost.count) of them not on the new master (\(lostAfterFailover.count) after the failover), "
                + "\(failed.count) failed (\(failedButApplied.count) of those applied anyway)"
                + (firstFailure.map { "; the first failure: \($0)" } ?? "")
        }
    }

    /// Writes `<tag>:<i>` = i for i = 0, 1, 2… (keys over every slot), runs `event` after 200 writes,
    /// goes on until `failedOver()` holds and 300 more writes were acknowledged, then reads every key
    /// back to count what was lost.
    func streamOfWrites(_ redis: RedisConnection, tag: String, event: () throws -> Void, failedOver: () throws -> Bool) throws -> StreamOutcome {
        var outcome = StreamOutcome()
        var failoverDoneAt: Int?
        let deadline = ContinuousClock.now + .seconds(90)
        var index = 0
        while ContinuousClock.now < deadline {
            if index == 200 { try event() }
            if index > 200, failoverDoneAt == nil, index % 25 == 0, try failedOver() { failoverDoneAt = index }
            if let start = failoverDoneAt, outcome.acknowledged.filter({ $0 > start }).count >= 300 { break }
            do {
                try redis.send("SET", "{\(tag):\(index)}", index)
                outcome.acknowledged.append(index)
            } catch let error as RedisError {
                outcome.failed.append(index)
                if outcome.firstFailure == nil { outcome.firstFailure = "write \(index): \(error)" }
            }
            index += 1
        }
        let start = try #require(failoverDoneAt, "the failover did not complete")
        outcome.acknowledgedAfterFailover = outcome.acknowledged.filter { $0 > start }
        let all = outcome.acknowledged + outcome.failed
        let replies = try redis.pipeline(all.map { RedisCommand("GET", "{\(tag):\($0)}") })
        for (index, reply) in zip(all, replies) {
            let present = reply.int == index
            if outcome.acknowledged.contains(index) {
                if !present { outcome.lost.append(index) }
                if !present && index > start { outcome.lostAfterFailover.append(index) }
            } else if present {
                outcome.failedButApplied.append(index)
            }
        }
        return outcome
    }

    @Test func aClusterFailoverDuringAStreamOfWritesLosesNothing() throws {
        let cluster = try RedisClusterServer()
        defer { cluster.stop() }
        let redis = RedisConnection(url: cluster.url)
        let master = cluster.initialMasters[0]
        var replica = 0
        let outcome = try streamOfWrites(redis, tag: "fo", event: {
            replica = try cluster.failover(replicaOf: master, wait: false)
        }, failedOver: {
            try cluster.nodes().contains { $0.port == replica && $0.isMaster && !$0.slots.isEmpty }
        })
        print("measured: CLUSTER FAILOVER during writes: \(outcome)")
        // A manual failover waits for the replica to catch up: nothing is lost, nothing fails.
        #expect(outcome.lost.isEmpty)
        #expect(outcome.failed.isEmpty)
        #expect(outcome.acknowledgedAfterFailover.count >= 300)
        let slot = try #require(cluster.nodes().first { $0.port == replica }?.slots.first?.lowerBound)
        #expect(redis.clusterMaster(ofSlot: slot)?.port == replica)
    }

    @Test func aKill9OfAMasterDuringAStreamOfWritesIsFollowed() throws {
        let cluster = try RedisClusterServer()
        defer { cluster.stop() }
        let redis = RedisConnection(url: cluster.url)
        let master = cluster.initialMasters[1]
        var replicas: [Int] = []
        let outcome = try streamOfWrites(redis, tag: "k9", event: {
            replicas = try cluster.kill9(master: master)
        }, failedOver: {
            try cluster.nodes().contains { replicas.contains($0.port) && $0.isMaster && !$0.slots.isEmpty }
        })
        // Replication is asynchronous: writes the dead master acknowledged but had not yet sent to
        // its replica are lost. Everything acknowledged after the promotion is kept.
        print("measured: kill -9 of a cluster master during writes (asynchronous replication may drop what it had not sent): \(outcome)")
        #expect(outcome.lostAfterFailover.isEmpty)
        #expect(outcome.acknowledgedAfterFailover.count >= 300)
        let promoted = try #require(cluster.nodes().first { replicas.contains($0.port) && $0.isMaster })
        let slot = try #require(promoted.slots.first?.lowerBound)
        #expect(redis.clusterMaster(ofSlot: slot)?.port == promoted.port)
    }

    @Test func aBlockedPopFollowsAFailoverOfItsMaster() throws {
        let cluster = try RedisClusterServer()
        defer { cluster.stop() }
        let queue = "{blocked}:queue", processing = "{blocked}:processing"
        let master = try cluster.master(ofSlot: RedisSlot.of(key: queue))
        let redis = RedisConnection(url: cluster.url)
        try redis.send("PING")
        let pop = BlockingExecutor.shared.start {
            try redis.sendBlocking(RedisCommand("BRPOPLPUSH", queue, processing, 30), block: .seconds(30))
        }
        func blocked(on port: Int) throws -> Bool {
            try cluster.cli(port, "CLIENT", "LIST").contains("cmd=brpoplpush")
        }
        try RedisProcesses.waitUntil("the pop to block on \(master)") { try blocked(on: master) }
        let promoted = try cluster.failover(replicaOf: master)
        // The old master releases the blocked client (MOVED or UNBLOCKED); it blocks again on the new one.
        try RedisProcesses.waitUntil("the pop to block on \(promoted)") { try blocked(on: promoted) }
        try RedisConnection(url: cluster.url).send("LPUSH", queue, "job-7")
        #expect(try pop.wait().string == "job-7")
        #expect(try RedisConnection(url: cluster.nodeURL(promoted)).send("LRANGE", processing, 0, -1)
            == .array([.bulk(Array("job-7".utf8))]))
    }

    @Test func aPasswordProtectedClusterAuthenticatesOnEveryNode() throws {
        let cluster = try RedisClusterServer(masters: 3, replicasPerMaster: 0, password: "cluster-secret")
        defer { cluster.stop() }
        let redis = RedisConnection(url: cluster.url)
        let keys = (0..<60).map { "pw:\($0)" }
        #expect(try redis.pipeline(keys.map { RedisCommand("SET", $0, $0) }) == keys.map { _ in .status("OK") })
        #expect(Set(keys.compactMap { redis.clusterMaster(ofSlot: RedisSlot.of(key: $0))?.port }).count == 3)

        var wrong = cluster.url
        wrong.password = "not-it"
        #expect {
            try RedisConnection(url: wrong).send("GET", "pw:1")
        } throws: { error in
            guard let error = error as? RedisError else { return false }
            return error.code == .authentication && !error.description.contains("not-it")
        }
    }

    // MARK: - Sentinel

    @Test func aSentinelFailoverAfterAKill9OfTheMasterIsFollowed() throws {
        let setup = try RedisSentinelServer(password: "data-secret")
        defer { setup.stop() }
        let redis = RedisConnection(url: setup.url)
        for index in 0..<100 { try redis.send("SET", "before:\(index)", index) }
        let oldMaster = try setup.kill9Master()
        let replica = try #require(setup.dataPorts.first { $0 != oldMaster })

        // Writes go on: each waits (within the command timeout) for the sentinels to promote the replica.
        var acknowledged = 0, failed = 0, firstFailure = ""
        let deadline = ContinuousClock.now + .seconds(90)
        while acknowledged < 300 && ContinuousClock.now < deadline {
            do {
                try redis.send("SET", "after:\(acknowledged)", acknowledged)
                acknowledged += 1
            } catch let error as RedisError {
                if failed == 0 { firstFailure = "; the first failure: \(error)" }
                failed += 1
            }
        }
        var lost = 0
        for index in 0..<100 {
            let value = try redis.send("GET", "before:\(index)").int
            if value != index { lost += 1 }
        }
        print("measured: sentinel failover after a kill -9 of the master: of 100 writes made before, \(lost) not on the new master "
              + "(asynchronous replication); \(acknowledged) acknowledged after, \(failed) failed while the sentinels promoted the replica\(firstFailure)")
        #expect(acknowledged == 300)
        let role = try redis.send("ROLE")
        #expect(role.array?.first?.string == "master")
        // The sentinels name the promoted replica.
        try RedisProcesses.waitUntil("the sentinels to name \(replica)") { try setup.currentMasterPort() == replica }
        #expect(try RedisConnection(url: RedisURL(host: "127.0.0.1", port: replica, password: "data-secret"))
            .send("GET", "after:299").int == 299)
    }

    @Test func aSentinelFailoverWithTheOldMasterAliveIsFollowed() throws {
        let setup = try RedisSentinelServer()
        defer { setup.stop() }
        let redis = RedisConnection(url: setup.url)
        for index in 0..<100 { try redis.send("SET", "before:\(index)", index) }
        let (oldMaster, replica) = try setup.failover()

        // The sentinels promote the replica, later turn the old master into its replica and close the
        // old master's clients: from then on the client writes to the new master.
        var acknowledged: [Int] = [], failed = 0, firstFailure = ""
        let deadline = ContinuousClock.now + .seconds(90)
        var demotedAt: Int?
        var index = 0
        while ContinuousClock.now < deadline {
            if demotedAt == nil, index % 50 == 0, try setup.serves(asReplica: oldMaster) { demotedAt = index }
            if let start = demotedAt, acknowledged.filter({ $0 > start }).count >= 200 { break }
            do {
                try redis.send("SET", "during:\(index)", index)
                acknowledged.append(index)
            } catch let error as RedisError {
                if failed == 0 { firstFailure = "; the first failure: \(error)" }
                failed += 1
            }
            index += 1
        }
        let start = try #require(demotedAt, "the old master was not demoted")
        let onNewMaster = RedisConnection(url: RedisURL(host: "127.0.0.1", port: replica))
        let replies = try onNewMaster.pipeline(acknowledged.map { RedisCommand("GET", "during:\($0)") })
        let lost = zip(acknowledged, replies).filter { $0.1.int != $0.0 }.map(\.0)
        // Sentinel promotes the replica first and demotes the old master seconds later: what the old
        // master acknowledged in between is dropped when it resyncs (a server-side window that
        // min-replicas-to-write narrows). What was written after the demotion is on the new master.
        print("measured: SENTINEL FAILOVER with the old master alive: \(acknowledged.count) writes acknowledged; \(lost.count) of them, "
              + "acknowledged by the old master between the promotion and its demotion, were dropped when it resynced as a replica "
              + "(the window docs/SCALING.md describes), \(lost.filter { $0 > start }.count) written after the demotion; \(failed) failed\(firstFailure)")
        #expect(!lost.contains { $0 > start })
        #expect(try redis.send("ROLE").array?.first?.string == "master")
        #expect(try onNewMaster.send("GET", "before:99").int == 99)
    }

    @Test func aSwitchAnnouncedByTheSentinelsMovesTheClientBeforeTheOldMasterIsDemoted() throws {
        let setup = try RedisSentinelServer()
        defer { setup.stop() }
        let redis = RedisConnection(url: setup.url)
        try redis.send("SET", "probe", "old")
        let (oldMaster, replica) = try setup.failover()

        // The sentinels announce +switch-master when the replica is promoted, and turn the old master
        // into a replica only seconds later. A client that only waited for errors would go on writing
        // to the old master until then; this one moves at the announcement.
        // A write made on the new master is not on the old one (until the old one resyncs as its replica).
        let onNewMaster = RedisConnection(url: RedisURL(host: "127.0.0.1", port: replica))
        let onOldMaster = RedisConnection(url: RedisURL(host: "127.0.0.1", port: oldMaster))
        var oldMasterRoleWhenMoved: String?
        var attempt = 0
        try RedisProcesses.waitUntil("a write to reach the new master", timeout: .seconds(60)) {
            attempt += 1
            try redis.send("SET", "probe", attempt)
            let role = try onOldMaster.send("ROLE").array?.first?.string
            guard try onNewMaster.send("GET", "probe").int == attempt, try onOldMaster.send("GET", "probe").int != attempt else {
                return false
            }
            oldMasterRoleWhenMoved = role
            return true
        }
        #expect(oldMasterRoleWhenMoved == "master")
    }

    @Test func aReplicaThatASentinelNamesIsNotTrusted() throws {
        let setup = try RedisSentinelServer()
        defer { setup.stop() }
        let stray = try setup.startStraySentinel()
        #expect(try RedisProcesses.cli(port: stray.replica, ["ROLE"]).hasPrefix("slave"))

        // The stray sentinel is asked first and names a replica: ROLE says so, the next sentinel is asked.
        var url = setup.url
        url.endpoints.insert(RedisURL.Endpoint(host: "127.0.0.1", port: stray.sentinel), at: 0)
        let redis = RedisConnection(url: url)
        #expect(try redis.send("ROLE").array?.first?.string == "master")
        try redis.send("SET", "trusted", "yes")
        #expect(try setup.cli(setup.currentMasterPort(), "GET", "trusted") == "yes")

        // With only the stray sentinel, no master is found: a clear error naming the replica.
        let strayOnly = RedisURL(sentinels: [RedisURL.Endpoint(host: "127.0.0.1", port: stray.sentinel)], masterName: setup.masterName)
        #expect {
            try RedisConnection(url: strayOnly, commandTimeout: .milliseconds(500)).send("GET", "k")
        } throws: { error in
            guard let error = error as? RedisError else { return false }
            return error.code == .connection && error.message.contains("127.0.0.1:\(stray.replica)")
                && error.message.contains("is not the master (ROLE: slave)")
        }
    }
}
