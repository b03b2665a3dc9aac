import Foundation
import JobQueue
import RedisClient
import RelocatorCore
import Testing
import TestSupport

/// One test's queue: a key prefix of its own on the test Redis, and the steps a worker takes.
struct QueueFixture {
    let queue: JobQueue
    let redis: RedisConnection

    init(shards: Int = 1, url: RedisURL? = nil) throws {
        queue = JobQueue(keys: try KeySchema(prefix: "{\(TestEnvironment.uniqueName("jq"))}", shards: shards))
        redis = RedisConnection(url: try url ?? TestEnvironment.redisURL())
    }

    var shard: ShardKeys { queue.keys.shard(0) }

    /// Removes every key of the test (every shard and the control slot).
    func cleanUp() {
        var names: [String] = []
        for pattern in Set(queue.keys.shards.map(\.prefix) + [queue.keys.control.prefix]) {
            names += (try? redis.scan(match: pattern + "*")) ?? []
        }
        for name in names { _ = try? redis.send("DEL", name) }
        redis.close()
    }

    func list(_ key: String) throws -> [String] {
        try redis.send("LRANGE", key, 0, -1).array?.compactMap(\.string) ?? []
    }

    @discardableResult
    func submit(_ cid: Int64, _ count: Int64 = 20000, file: String? = nil, from: String = "bronze", to: String = "gold",
                readAt: Int64 = JobQueue.nowMilliseconds()) throws -> JobQueue.Submission {
        try queue.submit(cid: cid, count: count, filename: file ?? "f\(cid)", dbLevel: from, target: to, readAt: readAt, on: redis)
    }

    /// Takes and claims the next job of `levels` in any shard, as a worker slot does.
    func fetch(_ worker: String = "w1", levels: [String] = ["gold", "silver", "bronze"]) throws -> Job? {
        for shard in 0..<queue.keys.shardCount {
            while let taken = try queue.take(worker: worker, shard: shard, levels: levels, on: redis) {
                if case .claimed(let fields) = try queue.claim(taken, worker: worker, on: redis) {
                    return try Job.decode(fields).get()
                }
            }
        }
        return nil
    }

    func job(_ cid: Int64) throws -> Job? { try queue.job(cid: cid, on: redis) }

    /// A verified move of `job` by `worker`, acknowledged.
    func ack(_ job: Job, worker: String = "w1") throws {
        #expect(try queue.ack(JobID(cid: job.cid, gen: job.gen), worker: worker, token: job.deliveryToken, checksum: "xxh128:00", bytes: 1, foundIn: nil, on: redis))
    }

    /// The next `count` jobs taken, claimed and acknowledged as `worker`'s verified moves: their ids.
    func fetchAndAck(_ count: Int, worker: String = "w1") throws -> [String] {
        try (0..<count).map { _ in
            let job = try #require(try fetch(worker))
            try ack(job, worker: worker)
            return job.id
        }
    }

    /// The done jobs of `shard` taken and committed, as the committer does: their ids.
    @discardableResult
    func commitDone(shard: Int = 0, committer: String = "c1", policy: CountPolicy = .none) throws -> [String] {
        let batch = try queue.takeDone(committer: committer, shard: shard, max: 100, on: redis)
        try queue.markCommitted(ids: batch.map(\.id), shard: shard, committer: committer, ttl: .seconds(60),
                                levels: ["gold", "silver", "bronze"], policy: policy, on: redis)
        return batch.map(\.id)
    }

    /// A verified move of `job` by `worker`, up to its commit.
    func moveAndCommit(_ job: Job, worker: String = "w1", committer: String = "c1") throws {
        try ack(job, worker: worker)
        try commitDone(shard: queue.keys.shardIndex(of: job.cid), committer: committer)
    }

    /// Records a stage of the move, as the worker's hooks do.
    @discardableResult
    func record(_ job: Job, worker: String = "w1", _ fields: [(JobField, String)]) throws -> Bool {
        try queue.recordProgress(JobID(cid: job.cid, gen: job.gen), worker: worker, token: job.deliveryToken, fields, on: redis)
    }

    func fail(_ job: Job, worker: String = "w1", reason: String = "io_error", permanent: Bool = false, delay: Duration = .zero,
              maxAttempts: Int = 5) throws -> JobQueue.FailOutcome {
        try queue.fail(JobID(cid: job.cid, gen: job.gen), worker: worker, token: job.deliveryToken, reason: reason, message: "\(reason): test", permanent: permanent,
                       delay: delay, maxAttempts: maxAttempts, on: redis)
    }

    /// Redis' clock in ms.
    func redisNow() throws -> Double {
        let time = try redis.send("TIME").array!.compactMap(\.int)
        return Double(time[0]) * 1000 + Double(time[1]) / 1000
    }
}
