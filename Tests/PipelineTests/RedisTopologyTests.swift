import Foundation
import RedisClient
import RelocatorCore
import SQLStore
import Testing
import TestSupport

/// The whole pipeline on a Redis Cluster (4 shards over 3 masters) and behind Sentinel, with a
/// failover in the middle. Redis replicates asynchronously: a failover can lose what a master
/// acknowledged just before it went; `reconcile --fix` brings the database to where the files are,
/// and a count that was lost is submitted again. What must hold whatever happens: every file exactly
/// once, with its bytes, on the level the database names.
@Suite(.serialized) struct RedisTopologyTests {
    static let contents = 48

    /// Counts for every content (half before the fault, half after), then the invariants.
    func exercise(_ pipeline: Pipeline, fault: () throws -> Void) throws -> (resubmitted: Int, moved: Int) {
        let rows = (1...Self.contents).map { (cid: $0, filename: "v\($0 % 5)/f\($0).bin", level: "bronze", bytes: Optional(2000 + $0 * 97)) }
        let sums = try pipeline.addContents(rows)
        try pipeline.cluster.startAPI()
        try pipeline.cluster.startWorker("w1")
        try pipeline.cluster.startWorker("w2")
        try pipeline.cluster.startCommitter()
        func count(_ cid: Int) -> Int { cid % 2 == 0 ? 50000 : 5000 }
        func target(_ cid: Int) -> String { cid % 2 == 0 ? "gold" : "silver" }
        func post(_ cid: Int) throws {
            let deadline = ContinuousClock.now + .seconds(60)
            while true {
                // 503 while Redis fails over: the client tries again, as a client of any service does.
                let response = try pipeline.post(cid, count(cid))
                if response.status == 200 { return }
                guard response.status == 503, ContinuousClock.now < deadline else {
                    throw ClusterError("cid \(cid): HTTP \(response.status) \(response.body)")
                }
                usleep(200_000)
            }
        }
        for cid in 1...(Self.contents / 2) { try post(cid) }
        try fault()
        for cid in (Self.contents / 2 + 1)...Self.contents { try post(cid) }
        func settled() throws -> Bool { try pipeline.cluster.isIdle() }
        try pipeline.cluster.waitUntil("the pipeline drains", timeout: .seconds(120), settled)
        // What a failover may have lost: reconcile puts the database where the files are…
        let fix = try pipeline.cluster.run(["reconcile", "--fix"])
        #expect(fix.status == 0 || fix.status == 2, "\(fix.stderr)")
        // …and counts whose jobs were lost are submitted again.
        var resubmitted = 0
        for cid in 1...Self.contents where try pipeline.level(of: cid) != target(cid) {
            resubmitted += 1
            try post(cid)
        }
        try pipeline.cluster.waitUntil("the resubmitted counts", timeout: .seconds(120)) {
            try settled() && (1...Self.contents).allSatisfy { try pipeline.level(of: $0) == target($0) }
        }
        for row in rows {
            #expect(pipeline.whereIs(row.filename) == [target(row.cid)], "cid \(row.cid)")
            #expect(try TestFiles.sha256(pipeline.directories[target(row.cid)]! + "/" + row.filename) == sums[row.cid], "cid \(row.cid)")
        }
        #expect(TestFiles.partFiles(under: pipeline.root.path).isEmpty && TestFiles.partFiles(under: pipeline.gold.path).isEmpty)
        let dead = try pipeline.cluster.run(["dlq", "list", "--json"])
        #expect(dead.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "[]", "\(dead.stdout)")
        return (resubmitted, try pipeline.relocations().count)
    }

    @Test func onARedisClusterThePipelineSurvivesAFailoverAndTheKillOfAMaster() throws {
        let redis = try RedisClusterServer()
        defer { redis.stop() }
        let url = "redis-cluster://" + redis.initialMasters.map { "127.0.0.1:\($0)" }.joined(separator: ",")
        let pipeline = try Pipeline(redis: url, environment: ["RELOCATOR_SHARDS": "4"])
        defer { pipeline.tearDown() }
        let shards = try KeySchema(prefix: pipeline.cluster.prefix, shards: 4)
        let result = try exercise(pipeline) {
            // The master of shard 0 hands over to its replica; the master of shard 1 dies.
            let first = try redis.master(ofSlot: RedisSlot.of(key: shards.shard(0).done))
            _ = try redis.failover(replicaOf: first)
            let second = try redis.master(ofSlot: RedisSlot.of(key: shards.shard(1).done))
            _ = try redis.kill9(master: second)
            try redis.waitUntilHealthy(masters: 3)
        }
        print("measured: cluster: \(result.moved) moves committed, \(result.resubmitted) counts submitted again after the failovers")
    }

    @Test func behindSentinelThePipelineFollowsTheMasterToItsReplica() throws {
        let redis = try RedisSentinelServer()
        defer { redis.stop() }
        let url = "redis-sentinel://" + redis.sentinelPorts.map { "127.0.0.1:\($0)" }.joined(separator: ",") + "/" + redis.masterName
        let pipeline = try Pipeline(redis: url)
        defer { pipeline.tearDown() }
        let result = try exercise(pipeline) {
            let old = try redis.kill9Master()
            let deadline = ContinuousClock.now + .seconds(60)
            while try redis.currentMasterPort() == old, ContinuousClock.now < deadline { usleep(200_000) }
        }
        print("measured: sentinel: \(result.moved) moves committed, \(result.resubmitted) counts submitted again after the failover")
    }
}
