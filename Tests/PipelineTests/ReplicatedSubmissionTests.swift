import Foundation
import RedisClient
import RelocatorCore
import Synchronization
import Testing
import TestSupport

/// `RELOCATOR_REDIS_MIN_REPLICAS` with the built binary: counts submitted over HTTP while Redis
/// fails over with the old master alive are either acknowledged and kept, or answered 503 ("may or
/// may not have been kept; sending it again is safe"). Private Sentinel and Cluster setups.
@Suite(.serialized) struct ReplicatedSubmissionTests {
    struct Outcome: CustomStringConvertible {
        var acknowledged: [Int] = []
        var unavailable = 0
        var other: [String] = []
        var lost: [Int] = []
        var description: String { "\(acknowledged.count) acknowledged, \(lost.count) of them lost, \(unavailable) answered 503" }
    }

    /// Posts a count for cid 1, 2, 3… from four clients at once; runs `event` once 400 were
    /// acknowledged, goes on until `over()` holds and 400 more were; then reads every acknowledged
    /// job back from Redis.
    func submissions(_ pipeline: Pipeline, contents: Int, redis: RedisConnection, event: () throws -> Void,
                     over: () throws -> Bool) throws -> Outcome {
        let port = pipeline.cluster.apiPort!
        let state = Mutex(Outcome())
        let next = Atomic<Int>(1)
        let stop = Atomic<Bool>(false)
        let clients = DispatchGroup()
        for _ in 0..<4 {
            DispatchQueue.global().async(group: clients) {
                while !stop.load(ordering: .relaxed) {
                    let cid = next.add(1, ordering: .relaxed).oldValue
                    guard cid <= contents else { return }
                    let result = try? HTTP.postForm(port, "/post_sentence", [("cid", String(cid)), ("count", "5000")])
                    state.withLock { outcome in
                        switch result?.status {
                        case 200: outcome.acknowledged.append(cid)
                        case 503: outcome.unavailable += 1
                        default: outcome.other.append("\(cid): \(result?.status ?? 0) \(result?.body.prefix(200) ?? "no answer")")
                        }
                    }
                }
            }
        }
        defer {
            stop.store(true, ordering: .relaxed)
            clients.wait()
        }
        try pipeline.cluster.waitUntil("400 submissions", timeout: .seconds(60)) { state.withLock { $0.acknowledged.count } >= 400 }
        try event()
        try pipeline.cluster.waitUntil("the failover", timeout: .seconds(90)) { try over() }
        let after = state.withLock { $0.acknowledged.count }
        try pipeline.cluster.waitUntil("400 submissions after the failover", timeout: .seconds(60)) {
            state.withLock { $0.acknowledged.count } >= after + 400
        }
        stop.store(true, ordering: .relaxed)
        clients.wait()
        var outcome = state.withLock { $0 }
        let keys = try KeySchema(prefix: pipeline.cluster.prefix, shards: Int(pipeline.cluster.environment["RELOCATOR_SHARDS"] ?? "1")!)
        let replies = try redis.pipeline(outcome.acknowledged.map { RedisCommand("HGET", keys.shard(of: Int64($0)).job(Int64($0)), "target") })
        outcome.lost = zip(outcome.acknowledged, replies).filter { $0.1.string != "silver" }.map(\.0)
        return outcome
    }

    @Test func aSentinelFailoverWithTheOldMasterAliveLosesNoAcknowledgedCount() throws {
        let setup = try RedisSentinelServer()
        defer { setup.stop() }
        let pipeline = try Pipeline(redis: setup.url.description,
                                    environment: ["RELOCATOR_REDIS_MIN_REPLICAS": "1", "RELOCATOR_REDIS_REPLICA_TIMEOUT_MS": "500"])
        defer { pipeline.tearDown() }
        let contents = 20_000
        try pipeline.addContents((1...contents).map { ($0, "f\($0).bin", "bronze", nil) })
        try pipeline.cluster.startAPI()
        let redis = RedisConnection(url: setup.url)
        defer { redis.close() }
        var started: (from: Int, to: Int)?
        let outcome = try submissions(pipeline, contents: contents, redis: redis, event: {
            started = try setup.failover()
        }, over: {
            try started.map(setup.failoverIsOver) ?? false
        })
        print("SENTINEL FAILOVER during HTTP submissions, RELOCATOR_REDIS_MIN_REPLICAS=1: \(outcome)")
        #expect(outcome.other.isEmpty, "\(outcome.other.prefix(5))")
        #expect(outcome.lost.isEmpty, "lost \(outcome.lost.count): \(outcome.lost.prefix(20))")
    }

    @Test func aForcedClusterFailoverLosesNoAcknowledgedCount() throws {
        let cluster = try RedisClusterServer()
        defer { cluster.stop() }
        let pipeline = try Pipeline(redis: cluster.url.description,
                                    environment: ["RELOCATOR_SHARDS": "4", "RELOCATOR_REDIS_MIN_REPLICAS": "1",
                                                  "RELOCATOR_REDIS_REPLICA_TIMEOUT_MS": "500"])
        defer { pipeline.tearDown() }
        let contents = 20_000
        try pipeline.addContents((1...contents).map { ($0, "f\($0).bin", "bronze", nil) })
        try pipeline.cluster.startAPI()
        let redis = RedisConnection(url: cluster.url)
        defer { redis.close() }
        // The master of shard 0's slot fails over.
        let keys = try KeySchema(prefix: pipeline.cluster.prefix, shards: 4)
        let master = try cluster.master(ofSlot: RedisSlot.of(key: keys.shard(0).job(4)))
        var replica = 0
        let outcome = try submissions(pipeline, contents: contents, redis: redis, event: {
            replica = try cluster.failover(replicaOf: master, wait: false, force: true)
        }, over: {
            let nodes = try cluster.nodes()
            return nodes.contains { $0.port == replica && $0.isMaster && !$0.slots.isEmpty } && nodes.contains { $0.port == master && !$0.isMaster }
        })
        print("CLUSTER FAILOVER FORCE during HTTP submissions, RELOCATOR_REDIS_MIN_REPLICAS=1: \(outcome)")
        #expect(outcome.other.isEmpty, "\(outcome.other.prefix(5))")
        #expect(outcome.lost.isEmpty, "lost \(outcome.lost.count): \(outcome.lost.prefix(20))")
    }
}
