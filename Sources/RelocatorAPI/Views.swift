import JobQueue
import RelocatorCore
import RelocatorServices
import SQLStore

// The JSON the API answers and the command line prints with `--json`: snake_case keys, times as
// RFC 3339 strings, absent values as explicit nulls so every answer has the same shape.

/// A relocation job: `/v1/jobs/{cid}`, the job of `/v1/contents/{cid}`, `why`.
public struct JobView: Encodable, Equatable, Sendable {
    public var job: Job
    /// When a `retrying` job is due again (its score in the retry set).
    public var nextRetryAt: Timestamp?
    /// True when the view names the hosts of a pull from another host and the bytes it verified
    /// (`pulled_from`, `verified`): `/v1/jobs/{cid}`, `/v1/contents/{cid}` and `why`. The count
    /// route's answers keep their fields.
    public var showsPull: Bool

    public init(_ job: Job, nextRetryAt: Timestamp? = nil, showsPull: Bool = false) {
        self.job = job
        self.nextRetryAt = nextRetryAt
        self.showsPull = showsPull
    }

    enum CodingKeys: String, CodingKey {
        case id, cid, count, filename, target, status, attempts, reason, checksum, bytes, gen, stage
        case dbLevel = "db_level", workerID = "worker_id", lastError = "last_error", earlierError = "earlier_error"
        case bytesDone = "bytes_done", bytesTotal = "bytes_total", nextTarget = "next_target", deferReason = "defer_reason"
        case enqueuedAt = "enqueued_at", updatedAt = "updated_at", startedAt = "started_at", dueAt = "due_at"
        case nextRetryAt = "next_retry_at"
        case token, fence
        case queuedBy = "queued_by", nextQueuedBy = "next_queued_by"
        case pulledFrom = "pulled_from", verified
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(job.id, forKey: .id)
        try c.encode(job.cid, forKey: .cid)
        try c.encode(job.count, forKey: .count)
        try c.encode(job.filename, forKey: .filename)
        try c.encode(job.dbLevel, forKey: .dbLevel)
        try c.encode(job.target, forKey: .target)
        try c.encode(job.status.rawValue, forKey: .status)
        try c.encode(job.attempts, forKey: .attempts)
        try c.encode(job.workerID, forKey: .workerID)
        try c.encode(job.lastError, forKey: .lastError)
        try c.encode(job.reason, forKey: .reason)
        try c.encode(job.earlierError, forKey: .earlierError)
        try c.encode(job.checksum, forKey: .checksum)
        try c.encode(job.bytes, forKey: .bytes)
        try c.encode(job.bytesDone ?? 0, forKey: .bytesDone)
        try c.encode(job.bytesTotal, forKey: .bytesTotal)
        try c.encode(job.gen, forKey: .gen)
        try c.encode(job.stage?.rawValue, forKey: .stage)
        try c.encode(job.nextTarget, forKey: .nextTarget)
        try c.encode(job.deferReason, forKey: .deferReason)
        try c.encode(Timestamp(milliseconds: job.enqueuedAt), forKey: .enqueuedAt)
        try c.encode(Timestamp(milliseconds: job.updatedAt), forKey: .updatedAt)
        try c.encode(Timestamp(milliseconds: job.startedAt), forKey: .startedAt)
        try c.encode(Timestamp(milliseconds: job.dueAt), forKey: .dueAt)
        try c.encode(nextRetryAt, forKey: .nextRetryAt)
        try c.encode(job.token, forKey: .token)
        try c.encode(job.fence, forKey: .fence)
        try c.encode(job.queuedBy.map(QueuedByView.init), forKey: .queuedBy)
        try c.encode(job.nextQueuedBy.map(QueuedByView.init), forKey: .nextQueuedBy)
        if showsPull {
            try c.encode(job.pulledFrom.map(PullRouteView.init), forKey: .pulledFrom)
            try c.encode(job.verified, forKey: .verified)
        }
    }
}

/// The two hosts of a pull from another host: `{"from_worker": …, "from_address": "host:port",
/// "to_host": …}` (null for a move on one host).
public struct PullRouteView: Encodable, Equatable, Sendable {
    public var fromWorker: String
    public var fromAddress: String
    public var toHost: String

    public init(_ route: PullRoute) {
        fromWorker = route.sourceWorker
        fromAddress = route.sourceAddress
        toHost = route.targetHost
    }

    enum CodingKeys: String, CodingKey {
        case fromWorker = "from_worker", fromAddress = "from_address", toHost = "to_host"
    }
}

/// Who queued a job and the rule that chose its target: `{"who": …, "rule": …}`.
public struct QueuedByView: Encodable, Equatable, Sendable {
    public var who: String
    public var rule: String

    public init(_ value: QueuedBy) {
        who = value.who
        rule = value.rule
    }
}

/// `/v1/contents/{cid}`: the row of `contents` and the active job.
public struct ContentView: Encodable, Sendable {
    public var content: Content
    public var job: JobView?

    enum CodingKeys: String, CodingKey {
        case cid, filename, job
        case contentLevel = "content_level", updateTime = "update_time"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(content.cid, forKey: .cid)
        try c.encode(content.filename, forKey: .filename)
        try c.encode(content.level, forKey: .contentLevel)
        try c.encode(content.updateTime, forKey: .updateTime)
        try c.encode(job, forKey: .job)
    }
}

/// `POST /v1/contents/{cid}/count`: 202 with what happened and the job.
struct SubmittedView: Encodable, Sendable {
    var outcome: String
    var job: JobView?

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(outcome, forKey: .outcome)
        try c.encode(job, forKey: .job)
    }

    enum CodingKeys: String, CodingKey { case outcome, job }
}

/// `POST /v1/contents/{cid}/count` when the file is already on its level: 200.
struct InPlaceView: Encodable, Sendable {
    var status = "in_place"
    var cid: Int64
    var level: String
}

/// A dead job as `/v1/dead` and `dlq list --json` show it.
public struct DeadJobView: Encodable, Sendable {
    public var id: String
    public var job: Job?

    public init(_ dead: DeadLetter) {
        id = dead.id
        job = dead.job
    }

    enum CodingKeys: String, CodingKey {
        case id, cid, filename, from, to, attempts, reason
        case lastError = "last_error", updatedAt = "updated_at"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(job?.cid ?? JobID(id)?.cid, forKey: .cid)
        try c.encode(job?.filename, forKey: .filename)
        try c.encode(job?.dbLevel, forKey: .from)
        try c.encode(job?.target, forKey: .to)
        try c.encode(job?.attempts, forKey: .attempts)
        try c.encode(job?.reason, forKey: .reason)
        try c.encode(job?.lastError, forKey: .lastError)
        try c.encode(job.flatMap { Timestamp(milliseconds: $0.updatedAt) }, forKey: .updatedAt)
    }
}

/// What `/v1/dead/replay` and `/v1/dead/purge` did: the ids acted on, and the others by outcome.
struct DeadActionView: Encodable, Sendable {
    var replayed: [String]?
    var purged: [String]?
    var skipped: [String: String]

    init(_ action: DeadAction, _ results: [(id: String, outcome: DeadOutcome)]) {
        let done = results.filter { $0.outcome == (action == .replay ? .replayed : .purged) }.map(\.id)
        if action == .replay { replayed = done } else { purged = done }
        skipped = Dictionary(results.filter { !done.contains($0.id) }.map { ($0.id, $0.outcome.rawValue) }, uniquingKeysWith: { a, _ in a })
    }
}

/// A worker or committer, from its heartbeat.
public struct WorkerView: Encodable, Sendable {
    public var id: String
    public var kind: String?
    public var host: String?
    public var pid: Int?
    public var levels: [String]
    public var alive: Bool
    public var heartbeatAt: Timestamp?
    /// Seconds since the last heartbeat, when there is one.
    public var heartbeatAgeSeconds: Double?
    public var held: Int
    public var concurrency: Int?
    public var startedAt: Timestamp?
    public var disks: [String: DiskView]

    public struct DiskView: Encodable, Sendable, Equatable {
        public var used: Int64
        public var free: Int64
        public var size: Int64
    }

    public init(_ worker: QueueStats.Worker, now: Int64) {
        id = worker.id
        kind = worker.info[.kind]
        host = worker.info[.host]
        pid = worker.info[.pid].flatMap { Int($0) }
        levels = (worker.info[.levels] ?? "").split(separator: ",").map(String.init)
        alive = worker.alive
        let beat = worker.info[.beatAt].flatMap { Int64($0) }
        heartbeatAt = Timestamp(milliseconds: beat)
        heartbeatAgeSeconds = beat.map { Double(max(0, now.saturatingSubtract($0))) / 1000 }
        held = worker.held
        concurrency = worker.info[.concurrency].flatMap { Int($0) }
        startedAt = Timestamp(milliseconds: worker.info[.startedAt].flatMap { Int64($0) })
        disks = (worker.info[.disks].map { DiskReport(decoding: $0).levels } ?? [:]).mapValues {
            DiskView(used: $0.used, free: $0.free, size: $0.size)
        }
    }

    enum CodingKeys: String, CodingKey {
        case id, kind, host, pid, levels, alive, held, concurrency, disks
        case heartbeatAt = "heartbeat_at", heartbeatAgeSeconds = "heartbeat_age_seconds", startedAt = "started_at"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(kind, forKey: .kind)
        try c.encode(host, forKey: .host)
        try c.encode(pid, forKey: .pid)
        try c.encode(levels, forKey: .levels)
        try c.encode(alive, forKey: .alive)
        try c.encode(heartbeatAt, forKey: .heartbeatAt)
        try c.encode(heartbeatAgeSeconds, forKey: .heartbeatAgeSeconds)
        try c.encode(held, forKey: .held)
        try c.encode(concurrency, forKey: .concurrency)
        try c.encode(startedAt, forKey: .startedAt)
        try c.encode(disks, forKey: .disks)
    }
}

/// `/v1/queues` and `status --json`: every level's queue, the lists, the totals and the workers.
public struct QueuesView: Encodable, Sendable {
    public var stats: QueueStats
    public var now: Int64

    /// `now`: this host's clock, used only when the stats do not carry Redis' (`clockMilliseconds`).
    public init(_ stats: QueueStats, now: Int64 = JobQueue.nowMilliseconds()) {
        self.stats = stats
        self.now = stats.clockMilliseconds ?? now
    }

    enum CodingKeys: String, CodingKey {
        case queues, paused, processing, committing, retry, deferred, dead, done, totals, workers
        case oldestAgeSeconds = "oldest_age_seconds", workersAlive = "workers_alive"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(Dictionary(stats.levels.map { ($0.name, $0.depth) }, uniquingKeysWith: { a, _ in a }), forKey: .queues)
        var ages: [String: Double] = [:]
        for level in stats.levels { if let age = level.oldestAgeMilliseconds { ages[level.name] = Double(age) / 1000 } }
        try c.encode(ages, forKey: .oldestAgeSeconds)
        try c.encode(stats.levels.filter(\.paused).map(\.name), forKey: .paused)
        try c.encode(stats.processing, forKey: .processing)
        try c.encode(stats.committing, forKey: .committing)
        try c.encode(stats.retry, forKey: .retry)
        try c.encode(stats.deferred, forKey: .deferred)
        try c.encode(stats.dead, forKey: .dead)
        try c.encode(stats.done, forKey: .done)
        var totals: [String: Int64] = [:]
        for field in StatField.allCases { totals[field.rawValue] = stats.totals[field] ?? 0 }
        try c.encode(totals, forKey: .totals)
        try c.encode(stats.workers.map { WorkerView($0, now: now) }, forKey: .workers)
        try c.encode(stats.workers.filter(\.alive).count, forKey: .workersAlive)
    }
}

