/// A session around another that changes some of its calls — the faults of the chaos runs, the
/// metering of pulls — and passes every other call to `inner` as it is. A batch of endings reaches
/// the decorator's `complete` one delivery at a time (`JobQueueing`'s own `complete(_ endings:)`),
/// so that no ending goes around it.
public protocol QueueDecorator: JobQueueing, QueueReading {
    var inner: any JobQueueSession { get }
}

extension QueueDecorator {
    public var shardCount: Int { inner.shardCount }
    public func submit(_ requests: [SubmitRequest]) throws -> [SubmitResult] { try inner.submit(requests) }
    public func next(_ request: NextRequest) throws -> NextResult { try inner.next(request) }
    public func record(_ delivery: Delivery, _ progress: MoveProgress) throws -> Bool { try inner.record(delivery, progress) }
    public func complete(_ delivery: Delivery, _ outcome: Outcome) throws -> Completion { try inner.complete(delivery, outcome) }
    public func nextDone(committer: String, shard: Int, max: Int, wait: Duration, fresh: Bool) throws -> DoneBatch {
        try inner.nextDone(committer: committer, shard: shard, max: max, wait: wait, fresh: fresh)
    }
    public func commit(_ batch: DoneBatch, committer: String?, levels: [String], policy: CountPolicy, keep: Duration) throws -> CommitResult {
        try inner.commit(batch, committer: committer, levels: levels, policy: policy, keep: keep)
    }
    public func maintain(_ request: MaintenanceRequest) throws -> MaintenanceReport { try inner.maintain(request) }
    public func admit(_ request: AdmissionRequest) throws -> AdmissionAnswer { try inner.admit(request) }
    public func control(_ action: ControlAction) throws -> ControlResult { try inner.control(action) }
    public func close() { inner.close() }

    public func jobs(cids: [Int64]) throws -> [Int64: Job] { try inner.jobs(cids: cids) }
    public func readJob(cid: Int64) throws -> Result<Job, Job.DecodingError>? { try inner.readJob(cid: cid) }
    public func states(cids: [Int64]) throws -> [Int64: JobState] { try inner.states(cids: cids) }
    public func jobCIDs() throws -> [Int64] { try inner.jobCIDs() }
    public func stats(levels: [String]) throws -> QueueStats { try inner.stats(levels: levels) }
    public func deadLetters() throws -> [DeadLetter] { try inner.deadLetters() }
    public func residents(level: String, _ which: ResidentQuery) throws -> [Resident] { try inner.residents(level: level, which) }
    public func scheduled(_ schedule: Schedule, limit: Int) throws -> [Job] { try inner.scheduled(schedule, limit: limit) }
    public func retryDue(_ id: JobID) throws -> Int64? { try inner.retryDue(id) }
    public func heartbeats() throws -> [Heartbeat] { try inner.heartbeats() }
    public func movesInFlight(workers: [String]) throws -> [(worker: String, id: String, job: Job?)] { try inner.movesInFlight(workers: workers) }
    public func jobsByLevel(levels: [String], known: [String: String]) throws -> (JobsByLevel, [String: String]) {
        try inner.jobsByLevel(levels: levels, known: known)
    }
    public func publishedPlacement() throws -> PlacementSnapshot? { try inner.publishedPlacement() }
    public func deadPage(_ request: PageRequest) throws -> Page<DeadLetter> { try inner.deadPage(request) }
    public func scheduledPage(_ schedule: Schedule, _ request: PageRequest) throws -> Page<ScheduledJob> { try inner.scheduledPage(schedule, request) }
    public func throughput(now: Int64, window: Int) throws -> Throughput { try inner.throughput(now: now, window: window) }
}
