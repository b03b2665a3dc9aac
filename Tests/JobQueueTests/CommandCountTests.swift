@testable import JobQueue
import RedisClient
import RelocatorCore
import Testing
import TestSupport

/// How many Redis commands a move costs in the steady state, counted by Redis itself (INFO
/// commandstats: a script's EVALSHA and every command it runs each count), step by step as the
/// pipeline takes them: the API's enqueue, a slot's take and claim, the record before publishing,
/// the finisher's ack of a batch, the committer's take and commit of the batch. A private Redis, so
/// that no other test's commands are counted.
@Suite struct CommandCountTests {
    /// Calls of each command so far.
    static func calls(_ redis: RedisConnection) throws -> [String: Int] {
        let text = try redis.send("INFO", "commandstats").string ?? ""
        var calls: [String: Int] = [:]
        for line in text.split(whereSeparator: \.isNewline) where line.hasPrefix("cmdstat_") {
            let parts = line.dropFirst("cmdstat_".count).split(separator: ":", maxSplits: 1)
            guard parts.count == 2, let field = parts[1].split(separator: ",").first, field.hasPrefix("calls="),
                  let count = Int(field.dropFirst("calls=".count)) else { continue }
            calls[String(parts[0])] = count
        }
        return calls
    }

    /// The commands `body` made Redis run, by name (the INFO that reads them left out).
    static func counted(_ redis: RedisConnection, _ body: () throws -> Void) throws -> [String: Int] {
        let before = try calls(redis)
        try body()
        var delta: [String: Int] = [:]
        for (name, count) in try calls(redis) where count - (before[name] ?? 0) > 0 { delta[name] = count - (before[name] ?? 0) }
        delta["info"] = (delta["info"] ?? 0) - 1
        return delta.filter { $0.value > 0 }
    }

    struct Costs {
        var enqueue = 0, takeAndClaim = 0, publishing = 0, ack = 0, takeDone = 0, commit = 0
        var total: Int { enqueue + takeAndClaim + publishing + ack + takeDone + commit }
    }

    /// `moves` contents moved from bronze to gold as the pipeline moves them, acknowledged and
    /// committed in one batch; the commands of each step.
    static func movesAndCommit(_ q: QueueFixture, _ session: RedisJobQueue, cids: ClosedRange<Int64>) throws -> Costs {
        var costs = Costs()
        var deliveries: [Delivery] = []
        let levels = ["gold", "silver", "bronze"]
        for cid in cids {
            costs.enqueue += try counted(q.redis) {
                _ = try session.submit([SubmitRequest(cid: cid, count: 50000, filename: "f\(cid).bin", dbLevel: "bronze", target: "gold",
                                                      readAt: -1, queuedBy: QueuedBy(who: "POST /v1/contents/{cid}/count", rule: "count"))])
            }.values.reduce(0, +)
        }
        let checksum = try Checksum(parsing: "xxh128:" + String(repeating: "ab", count: 16))
        for _ in cids {
            var next: NextResult = .idle
            costs.takeAndClaim += try counted(q.redis) {
                next = try session.next(NextRequest(worker: "w1", levels: ["gold"], rotation: 0, wait: .zero))
            }.values.reduce(0, +)
            guard case .delivery(let delivery) = next else { throw CancellationError() }
            deliveries.append(delivery)
            var recorded = false
            costs.publishing += try counted(q.redis) {
                recorded = try session.record(delivery, .publishing(checksum, bytes: 65536))
            }.values.reduce(0, +)
            #expect(recorded)
        }
        var ended: [Result<Completion, any Error>] = []
        costs.ack = try counted(q.redis) {
            ended = session.complete(deliveries.map { ($0, Outcome.moved(checksum, bytes: 65536, method: .copied, foundIn: nil)) })
        }.values.reduce(0, +)
        #expect(try ended.map { try $0.get() } == Array(repeating: .done, count: deliveries.count))
        var batch = DoneBatch(shard: 0, ids: [], jobs: [])
        costs.takeDone = try counted(q.redis) {
            batch = try session.nextDone(committer: "c1", shard: 0, max: 500, wait: .zero, fresh: false)
        }.values.reduce(0, +)
        #expect(batch.jobs.count == deliveries.count)
        costs.commit = try counted(q.redis) {
            _ = try session.commit(batch, committer: "c1", levels: levels, policy: .none, keep: .seconds(60))
        }.values.reduce(0, +)
        for cid in cids { #expect(try q.job(cid)?.status == .committed) }
        return costs
    }

    @Test func aMoveInTheSteadyStateCostsAtMostItsBudgetOfCommands() throws {
        let server = try RedisServer()
        let q = try QueueFixture(url: server.url)
        defer { q.cleanUp() }
        let session = RedisJobQueue(queue: q.queue, redis: q.redis)
        // Once first: the scripts are loaded (SCRIPT LOAD after a NOSCRIPT) before the counting.
        _ = try Self.movesAndCommit(q, session, cids: 1...2)
        let batch: Int64 = 8
        let costs = try Self.movesAndCommit(q, session, cids: 101...(100 + batch))
        let n = Int(batch)
        // Each move alone: enqueue.lua (TIME, HMGET, gens read and written, the hash, the queue, its
        // score); the take (SMISMEMBER, RPOPLPUSH) and the claim (TIME, HGETALL, SISMEMBER for a pause
        // since the take, EXISTS of a reconcile lease, HSET); the record before publishing (HMGET of
        // its token, HSET).
        #expect(costs.enqueue <= 8 * n, "enqueue: \(costs.enqueue) commands for \(n) moves")
        #expect(costs.takeAndClaim <= 9 * n, "take and claim: \(costs.takeAndClaim) commands for \(n) moves")
        #expect(costs.publishing <= 3 * n, "the record before publishing: \(costs.publishing) commands for \(n) moves")
        // The batch's ack: per move HMGET, LREM, HSET, HDEL; once for the batch EVALSHA, TIME, one
        // LPUSH onto done, one HSET of moved-at, the counters and this minute's ring.
        #expect(costs.ack <= 4 * n + 8, "ack: \(costs.ack) commands for a batch of \(n)")
        // The committer's take: the script (LRANGE ×2, LTRIM, LPUSH) and each job's hash.
        #expect(costs.takeDone <= n + 5, "take-done: \(costs.takeDone) commands for a batch of \(n)")
        // The commit: per job HMGET, HSET, EXPIRE; once for the batch EVALSHA, TIME, LRANGE + LTRIM,
        // ZMSCORE + ZREM on the level left, ZADD on the level reached, HSET of moved-at, the counter
        // and the ring.
        #expect(costs.commit <= 3 * n + 11, "commit: \(costs.commit) commands for a batch of \(n)")
        #expect(costs.total <= 31 * n, "a move costs \(Double(costs.total) / Double(n)) commands: \(costs)")
    }
}
