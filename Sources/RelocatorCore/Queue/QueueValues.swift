/// The values that cross the queue seam (`JobQueueing`, `QueueReading`): jobs and ids, never
/// hashes of strings; enums for outcomes, reasons and methods.

/// One delivery of a job: the job as its claim left it (`moving`, with this delivery's token), the
/// shard it lives in and the level whose queue it was taken from.
public struct Delivery: Sendable, Equatable {
    public var job: Job
    public var shard: Int
    public var level: String

    public init(job: Job, shard: Int, level: String) {
        self.job = job
        self.shard = shard
        self.level = level
    }

    public var id: JobID { JobID(cid: job.cid, gen: job.gen) }
    /// Every call of this delivery carries it; an older one is refused.
    public var token: String { job.deliveryToken }
    public var worker: String { job.workerID ?? "" }
}

/// How a file was moved; the same words in logs, metrics and the results.
public enum MoveMethod: String, Sendable, CaseIterable, Codable {
    /// Same filesystem: linked under the new name, then the old name removed.
    case linked
    /// Across filesystems: copied, read back from the device and verified.
    case copied
    /// An earlier delivery had already published the file; it was verified.
    case alreadyInPlace = "already_in_place"
}

/// What a delivery records while it moves.
public enum MoveProgress: Sendable, Equatable {
    /// The verified checksum and size, before anything is published or removed (`stage=publishing`);
    /// for a pull from another host, the version of the source it copied (`JobField.sourceVersion`).
    case publishing(Checksum, bytes: Int64, sourceVersion: String? = nil)
    /// Bytes copied so far of a long move.
    case copied(Int64, of: Int64)
    /// Bytes of a pull from another host fsynced in the temporary file: they survive the delivery.
    case verified(Int64, of: Int64)
    /// The digest of the secret a delivery pulling from another host sends with its requests
    /// (`TransferProtocol.secretHeader`), recorded before its first request.
    case transferSecret(digest: String)
    /// Where a pull from another host pulls the file from (the source's worker, located) and the
    /// host it pulls to (`JobField.pulledFrom`), recorded before the first range is asked for.
    case pulling(PullRoute)
    /// `transferSecret` and `pulling` in one record: a fresh pull's secret and the source's
    /// worker it asks first, before its first request.
    case pullStarted(secretDigest: String, route: PullRoute)
    /// The copy is linked under its final name and its directory fsynced (`stage=published`).
    case published
    /// A published copy of a pull was removed again, its directory fsynced: the source changed
    /// after it was copied. No copy is at the target (`stage=copying`).
    case copyWithdrawn
}

/// How a delivery ends.
public enum Outcome: Sendable, Equatable {
    /// Verified and durable: the job goes to `done`. `foundIn`: the level the file was taken from,
    /// when it was not the job's `db_level`.
    case moved(Checksum, bytes: Int64, method: MoveMethod, foundIn: String?)
    /// A failure: retried after `delay` (within `maxAttempts`), or dead when `permanent`.
    case failed(FailureReason, message: String, permanent: Bool, delay: Duration, maxAttempts: Int)
    /// Waits `delay` without an attempt (no room, a residency window, the content locked, a level
    /// out of service); `lockHeld`: the delivery held the content's lock (the fence is gone).
    case deferred(reason: String, delay: Duration, lockHeld: Bool)
}

/// What the queue did with a delivery's end.
public enum Completion: String, Sendable, Equatable {
    case done, retrying, dead, deferred
    /// The job was turned around by a newer count: its next delivery removes the copy published.
    case reversed
    /// Nothing was published and a newer count wants the file where it is: forgotten.
    case dropped
    /// The job is no longer this delivery's: nothing changed.
    case stale
}

/// What the queue says of a content's job, without its fields.
public struct JobState: Sendable, Equatable {
    public var status: JobStatus
    public var gen: Int64

    public init(status: JobStatus, gen: Int64) {
        self.status = status
        self.gen = gen
    }
}

/// An id a worker holds in its processing list.
public struct HeldJob: Sendable, Hashable {
    public var shard: Int
    public var id: String

    public init(shard: Int, id: String) {
        self.shard = shard
        self.id = id
    }
}

/// A request for the next job of a worker's slot.
public struct NextRequest: Sendable, Equatable {
    public var worker: String
    /// The levels it may take from, in the order it prefers them.
    public var levels: [String]
    /// Where this slot starts among the shards (slots start at different shards).
    public var rotation: Int
    /// How long to wait when every queue is empty.
    public var wait: Duration

    public init(worker: String, levels: [String], rotation: Int, wait: Duration) {
        self.worker = worker
        self.levels = levels
        self.rotation = rotation
        self.wait = wait
    }
}

public enum NextResult: Sendable, Equatable {
    case delivery(Delivery)
    /// Nothing to do after waiting.
    case idle
    /// A job of a level paused meanwhile was put back untouched: take nothing more from `level`.
    case paused(level: String)
    /// A job whose hash is not a job (claimed with `token`): the worker sends it to the dead letters.
    case undecodable(HeldJob, token: String, problem: String)
}

/// The follow-ups the commit of a batch queued, and the jobs whose follow-up named an unknown level.
public struct CommitResult: Sendable, Equatable {
    public var followUps: Int
    public var unknownLevel: [String]

    public init(followUps: Int, unknownLevel: [String]) {
        self.followUps = followUps
        self.unknownLevel = unknownLevel
    }
}

/// A job in the dead-letter list.
public struct DeadLetter: Sendable, Equatable {
    public var id: String
    public var shard: Int
    /// Nil when its hash is gone or cannot be read as a job.
    public var job: Job?

    public init(id: String, shard: Int, job: Job?) {
        self.id = id
        self.shard = shard
        self.job = job
    }
}

/// A job waiting in the retry or the deferred set, with when it is due (its score, ms).
public struct ScheduledJob: Sendable, Equatable {
    public var id: String
    public var shard: Int
    public var due: Int64
    /// Nil when its hash is gone or cannot be read as a job.
    public var job: Job?

    public init(id: String, shard: Int, due: Int64, job: Job?) {
        self.id = id
        self.shard = shard
        self.due = due
        self.job = job
    }
}

public enum DeadAction: String, Sendable {
    case replay, purge
}

public enum DeadOutcome: String, Sendable {
    case replayed, purged, reversed, missing, stale, changed
}

/// A job whose id is in no list its status calls for.
public struct Orphan: Sendable, Equatable {
    public var cid: Int64
    public var status: JobStatus
    public var id: String
    /// True when put back.
    public var restored: Bool

    public init(cid: Int64, status: JobStatus, id: String, restored: Bool) {
        self.cid = cid
        self.status = status
        self.id = id
        self.restored = restored
    }
}

/// A content held by a reconcile run or a rename (its lease): a job of it that a slot takes is not
/// put back onto its queue (every waiting slot would take it again at once, for as long as the
/// hold lasts) but waits as `deferred`, without an attempt, until the hold ends or `recheck` has
/// passed, and is then promoted like any deferred job.
public enum HeldContent {
    public static let recheck: Duration = .seconds(5)
    public static let deferReason = "its content is held by a reconcile run or a rename"
}
