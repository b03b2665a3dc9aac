/// What the queue holds, for the operators' views (`status`, `why`, the dashboard, `/metrics`) and
/// for placement and reconcile, which decide from it: reads only.
public protocol QueueReading: AnyObject {
    /// The jobs of these contents (those that have one; a hash that cannot be read is left out).
    func jobs(cids: [Int64]) throws -> [Int64: Job]
    /// A content's job as stored: nil when it has none, else the job or what is wrong with its hash.
    func readJob(cid: Int64) throws -> Result<Job, Job.DecodingError>?
    /// Their status and generation only (a smaller read), those that have a job.
    func states(cids: [Int64]) throws -> [Int64: JobState]
    /// Every content that has a job.
    func jobCIDs() throws -> [Int64]
    func stats(levels: [String]) throws -> QueueStats
    func deadLetters() throws -> [DeadLetter]
    /// Residents of a level with their scores, from every shard.
    func residents(level: String, _ which: ResidentQuery) throws -> [Resident]
    /// The jobs waiting in `schedule` (soonest due first), at most `limit` per shard.
    func scheduled(_ schedule: Schedule, limit: Int) throws -> [Job]
    /// When a retrying job is due (ms), nil when it is not waiting.
    func retryDue(_ id: JobID) throws -> Int64?
    /// Every worker and committer whose heartbeat is alive.
    func heartbeats() throws -> [Heartbeat]
    /// What these workers hold, with the jobs.
    func movesInFlight(workers: [String]) throws -> [(worker: String, id: String, job: Job?)]
    /// Every job id in the queues, processing, retry, deferred, dead, done and committing lists,
    /// counted by target level and shard. `known` maps `shard/id` to a target read before (an id's
    /// target never changes), so only new ids cost a read; the map returned holds the ids seen.
    func jobsByLevel(levels: [String], known: [String: String]) throws -> (JobsByLevel, [String: String])
    /// The placement the rebalancer published last; nil when none was.
    func publishedPlacement() throws -> PlacementSnapshot?

    // The operators' lists, a page at a time (`/v1/dead`, `/v1/retrying`, `/v1/deferred`, the
    // dashboard, `dlq list`): only the page's jobs are read, however long a list is.

    /// A page of the dead letters of every shard, newest job first (`DeadLetterOrder`).
    func deadPage(_ request: PageRequest) throws -> Page<DeadLetter>
    /// A page of the retrying or the deferred jobs of every shard, soonest due first
    /// (`ScheduleOrder`); a cursor that does not read as one starts from the first.
    func scheduledPage(_ schedule: Schedule, _ request: PageRequest) throws -> Page<ScheduledJob>
    /// Moves and commits in each of the `window` minutes up to `now` (ms), oldest first, as the
    /// workers and committers counted them (`ThroughputRing`).
    func throughput(now: Int64, window: Int) throws -> Throughput
}

/// Where jobs wait for a time: a retry's backoff, or a deferral (room, residency, a lock).
public enum Schedule: Sendable, Equatable {
    case retry, deferred
}

public enum ResidentQuery: Sendable, Equatable {
    /// The coldest (lowest score first).
    case coldest(limit: Int)
    /// The hottest (highest score first).
    case hottest(limit: Int)
    /// Those scored below `score`, lowest first.
    case below(Double, limit: Int)
    /// One content's score.
    case cid(Int64)
}

public struct Resident: Sendable, Equatable {
    public var cid: Int64
    public var score: Double

    public init(cid: Int64, score: Double) {
        self.cid = cid
        self.score = score
    }
}
