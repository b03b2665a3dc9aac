import Foundation
import Logging
import RelocatorCore
import Synchronization

/// The worker's queue with the faults of `RELOCATOR_FAULTS` that concern it: every `loseReply`th
/// delivery is kept from the worker as if the claim's reply had been lost (the job stays in the
/// worker's processing list, for its maintenance to give back), and with `crashBeforeAck` the
/// process is killed when it ends a verified move, before the queue hears of it.
public struct FaultyQueueDriver: JobQueueDriver {
    let inner: any JobQueueDriver
    let faults: WorkerFaults
    let logger: Logger
    let deliveries = Counter()

    final class Counter: Sendable {
        let value = Atomic(0)
    }

    public init(_ inner: any JobQueueDriver, faults: WorkerFaults, logger: Logger) {
        self.inner = inner
        self.faults = faults
        self.logger = logger
    }

    public func session() -> any JobQueueSession {
        FaultySession(inner: inner.session(), faults: faults, logger: logger, deliveries: deliveries)
    }
}

final class FaultySession: JobQueueing, QueueReading {
    let inner: any JobQueueSession
    let faults: WorkerFaults
    let logger: Logger
    let deliveries: FaultyQueueDriver.Counter

    init(inner: any JobQueueSession, faults: WorkerFaults, logger: Logger, deliveries: FaultyQueueDriver.Counter) {
        self.inner = inner
        self.faults = faults
        self.logger = logger
        self.deliveries = deliveries
    }

    var shardCount: Int { inner.shardCount }

    func next(_ request: NextRequest) throws -> NextResult {
        let result = try inner.next(request)
        if case .delivery(let delivery) = result, faults.loseReply > 0,
           deliveries.value.add(1, ordering: .relaxed).newValue % faults.loseReply == 0 {
            logger.warning("fault injection: the reply to the claim of \(delivery.id) is lost")
            return .idle
        }
        return result
    }

    func complete(_ delivery: Delivery, _ outcome: Outcome) throws -> Completion {
        if faults.crashBeforeAck, case .moved = outcome {
            logger.critical("fault injection: crashing between the move and the ack")
            raise(SIGKILL)
        }
        return try inner.complete(delivery, outcome)
    }

    // Everything else as the queue does it.
    func submit(_ requests: [SubmitRequest]) throws -> [SubmitResult] { try inner.submit(requests) }
    func record(_ delivery: Delivery, _ progress: MoveProgress) throws -> Bool {
        if faults.crashBeforePublished, progress == .published {
            logger.critical("fault injection: crashing between the publication of \(delivery.id) and its record")
            raise(SIGKILL)
        }
        let recorded = try inner.record(delivery, progress)
        if recorded, case .verified(let done, _) = progress, faults.crashAfterChunk?.takesTheLast() == true {
            logger.critical("fault injection: crashing after \(done) bytes of \(delivery.id) were recorded as verified")
            raise(SIGKILL)
        }
        return recorded
    }
    func nextDone(committer: String, shard: Int, max: Int, wait: Duration, fresh: Bool) throws -> DoneBatch {
        try inner.nextDone(committer: committer, shard: shard, max: max, wait: wait, fresh: fresh)
    }
    func commit(_ batch: DoneBatch, committer: String?, levels: [String], policy: CountPolicy, keep: Duration) throws -> CommitResult {
        try inner.commit(batch, committer: committer, levels: levels, policy: policy, keep: keep)
    }
    func maintain(_ request: MaintenanceRequest) throws -> MaintenanceReport { try inner.maintain(request) }
    func admit(_ request: AdmissionRequest) throws -> AdmissionAnswer { try inner.admit(request) }
    func control(_ action: ControlAction) throws -> ControlResult { try inner.control(action) }
    func close() { inner.close() }

    func jobs(cids: [Int64]) throws -> [Int64: Job] { try inner.jobs(cids: cids) }
    func readJob(cid: Int64) throws -> Result<Job, Job.DecodingError>? { try inner.readJob(cid: cid) }
    func states(cids: [Int64]) throws -> [Int64: JobState] { try inner.states(cids: cids) }
    func jobCIDs() throws -> [Int64] { try inner.jobCIDs() }
    func stats(levels: [String]) throws -> QueueStats { try inner.stats(levels: levels) }
    func deadLetters() throws -> [DeadLetter] { try inner.deadLetters() }
    func residents(level: String, _ which: ResidentQuery) throws -> [Resident] { try inner.residents(level: level, which) }
    func scheduled(_ schedule: Schedule, limit: Int) throws -> [Job] { try inner.scheduled(schedule, limit: limit) }
    func retryDue(_ id: JobID) throws -> Int64? { try inner.retryDue(id) }
    func heartbeats() throws -> [Heartbeat] { try inner.heartbeats() }
    func movesInFlight(workers: [String]) throws -> [(worker: String, id: String, job: Job?)] { try inner.movesInFlight(workers: workers) }
    func jobsByLevel(levels: [String], known: [String: String]) throws -> (JobsByLevel, [String: String]) {
        try inner.jobsByLevel(levels: levels, known: known)
    }
    func publishedPlacement() throws -> PlacementSnapshot? { try inner.publishedPlacement() }
    func deadPage(_ request: PageRequest) throws -> Page<DeadLetter> { try inner.deadPage(request) }
    func scheduledPage(_ schedule: Schedule, _ request: PageRequest) throws -> Page<ScheduledJob> { try inner.scheduledPage(schedule, request) }
    func throughput(now: Int64, window: Int) throws -> Throughput { try inner.throughput(now: now, window: window) }
}
