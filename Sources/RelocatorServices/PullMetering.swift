import RelocatorCore

/// The queue as a pull from another host calls it, counting what the pull does: the bytes it
/// pulled (each chunk once it is fsynced and recorded verified; a prefix an earlier delivery
/// verified and this one hashed again is not counted) and how it ended (`Completion`). Everything
/// else goes to the queue as it is.
final class PullMetering: JobQueueing, QueueReading {
    let inner: any JobQueueSession
    let from: String
    let to: String
    /// The bytes verified so far, as the job said at the claim and then as recorded.
    private var verified: Int64

    init(_ inner: any JobQueueSession, job: Job) {
        self.inner = inner
        from = job.dbLevel
        to = job.target
        verified = max(0, job.verified ?? 0)
    }

    func record(_ delivery: Delivery, _ progress: MoveProgress) throws -> Bool {
        let recorded = try inner.record(delivery, progress)
        if recorded, case .verified(let done, _) = progress, done >= 0 {
            // Fewer than before: the kept prefix differed from the source's, and the pull started from 0.
            ServiceMetrics.pulled(from: from, to: to, bytes: done >= verified ? done - verified : done)
            verified = done
        }
        return recorded
    }

    func complete(_ delivery: Delivery, _ outcome: Outcome) throws -> Completion {
        let completion = try inner.complete(delivery, outcome)
        ServiceMetrics.pull(from: from, to: to, outcome: completion.rawValue)
        return completion
    }

    // Everything else as the queue does it.
    var shardCount: Int { inner.shardCount }
    func next(_ request: NextRequest) throws -> NextResult { try inner.next(request) }
    func complete(_ endings: [(delivery: Delivery, outcome: Outcome)]) -> [Result<Completion, any Error>] {
        endings.map { ending in Result { try complete(ending.delivery, ending.outcome) } }
    }
    func submit(_ requests: [SubmitRequest]) throws -> [SubmitResult] { try inner.submit(requests) }
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
