import Foundation
import JobQueue
import RedisClient
import RelocatorCore
import RelocatorTesting
import Testing
import TestSupport

/// One queue under test: the real one (the scripts on the test Redis, under a key prefix of the
/// test's own) or the memory twin. The contract's scenarios run on both through the seam only.
final class QueueUnderTest: @unchecked Sendable {
    enum Kind: String, CaseIterable, CustomStringConvertible {
        case redis, memory
        var description: String { rawValue }
    }

    let kind: Kind
    let session: any JobQueueSession
    private let cleanUp: () -> Void
    /// Overwrites a job hash field (another program mangled it).
    let mangle: (Int64, JobField, String) throws -> Void

    init(_ kind: Kind, shards: Int = 1) throws {
        self.kind = kind
        let keys = try KeySchema(prefix: "{\(TestEnvironment.uniqueName("qc"))}", shards: shards)
        switch kind {
        case .redis:
            let redis = RedisConnection(url: try TestEnvironment.redisURL())
            session = RedisJobQueue(queue: JobQueue(keys: keys), redis: redis)
            mangle = { cid, field, value in try redis.send("HSET", keys.shard(of: cid).job(cid), field.rawValue, value) }
            cleanUp = {
                for prefix in Set(keys.shards.map(\.prefix) + [keys.control.prefix]) {
                    for name in (try? redis.scan(match: prefix + "*")) ?? [] { _ = try? redis.send("DEL", name) }
                }
                redis.close()
            }
        case .memory:
            let memory = MemoryQueue(keys: keys)
            session = memory
            mangle = { cid, field, value in memory.corrupt(cid: cid, field: field, value: value) }
            cleanUp = {}
        }
    }

    func close() { cleanUp() }

    // MARK: - The steps of a scenario, as the house takes them

    static let checksum = try! Checksum(parsing: "xxh128:" + String(repeating: "ab", count: 16))

    @discardableResult
    func submit(_ cid: Int64, _ count: Int64 = 20000, from: String = "bronze", to: String = "gold",
                policy: CountPolicy = .none) throws -> SubmitResult {
        try session.submit(SubmitRequest(cid: cid, count: count, filename: "f\(cid)", dbLevel: from, target: to,
                                         readAt: SubmitRequest.freshRead, policy: policy))
    }

    /// The next delivery of `levels` for `worker`, without waiting.
    func next(_ worker: String = "w1", levels: [String] = ["gold", "silver", "bronze"]) throws -> Delivery? {
        guard case .delivery(let delivery) = try session.next(NextRequest(worker: worker, levels: levels, rotation: 0, wait: .zero)) else {
            return nil
        }
        return delivery
    }

    func moved(_ delivery: Delivery) throws -> Completion {
        try session.complete(delivery, .moved(Self.checksum, bytes: 10, method: .copied, foundIn: nil))
    }

    func failed(_ delivery: Delivery, _ reason: FailureReason = .ioError, permanent: Bool = false, maxAttempts: Int = 5) throws -> Completion {
        try session.complete(delivery, .failed(reason, message: "\(reason.rawValue): test", permanent: permanent, delay: .zero,
                                               maxAttempts: maxAttempts))
    }

    func job(_ cid: Int64) throws -> Job? { try session.jobs(cids: [cid])[cid] }

    /// A retry `after` a delay.
    func failed(_ delivery: Delivery, after delay: Duration) throws -> Completion {
        try session.complete(delivery, .failed(.ioError, message: "io_error: test", permanent: false, delay: delay, maxAttempts: 5))
    }

    /// Due jobs promoted by `process`, whose retries wait at most `retryCap`.
    func promote(as process: String, retryCap: Duration) throws -> Int {
        try session.maintain(MaintenanceRequest(beat: Heartbeat(id: process, kind: .worker), ttl: .seconds(60), promoteDue: true,
                                                horizons: ScheduleHorizons(retry: retryCap))).promoted
    }

    func promote() throws -> Int {
        try session.maintain(MaintenanceRequest(beat: Heartbeat(id: "maintainer", kind: .worker), ttl: .seconds(60), promoteDue: true)).promoted
    }

    /// Commits every done job of shard 0 as a committer does after its SQL transaction.
    func commitAll(levels: [String] = ["gold", "silver", "bronze"], policy: CountPolicy = .none) throws -> CommitResult {
        let batch = try session.nextDone(committer: "c1", shard: 0, max: 100, wait: .zero, fresh: false)
        return try session.commit(batch, committer: "c1", levels: levels, policy: policy, keep: .seconds(60))
    }
}

/// What a scenario observed, step by step: equal on both queues.
struct Trace: Equatable, CustomStringConvertible {
    var steps: [String] = []
    mutating func add(_ step: String) { steps.append(step) }
    var description: String { steps.joined(separator: "\n") }
}

/// A job as the contract compares it: the fields both queues keep the same way (times and
/// generations are their clocks', compared as relations by the scenarios themselves).
func shape(_ job: Job?) -> String {
    guard let job else { return "no job" }
    return "status=\(job.status.rawValue) from=\(job.dbLevel) to=\(job.target) attempts=\(job.attempts) token=\(job.token ?? 0) "
        + "fence=\(job.fence.map(String.init) ?? "-") next=\(job.nextTarget ?? "-") stage=\(job.stage?.rawValue ?? "-") "
        + "reason=\(job.reason ?? "-") worker=\(job.workerID ?? "-")"
}
