/// What the queue holds, for the operators' views (`status`, `why`, the dashboard, `/metrics`) and
/// for placement and reconcile, which decide from it: reads only.
public protocol QueueReading: AnyObject {
    /// The jobs of these contents (those that have one).
    func jobs(cids: [Int64]) throws -> [Int64: Job]
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
