/// Where a relocation job is in its life: `queued → moving → done → committed`, with `retrying`,
/// `deferred` and `dead` beside them. docs/QUEUE.md has the state table.
public enum JobStatus: String, Sendable, Codable, CaseIterable {
    case queued, moving, done, committed, retrying, deferred, dead

    /// The word the original `/post_sentence` answered for this status.
    public var compatName: String { self == .queued ? "update" : rawValue }
}

/// How far a move has gone, recorded in the job so that a job whose copy may already be at its
/// target is never dropped or re-aimed as if nothing had happened.
public enum MoveStage: String, Sendable, CaseIterable {
    /// A temporary file is being written (its path is in `part`).
    case copying
    /// The copy was verified; it is being (or has been) published under its final name. From here
    /// on a copy may exist at the target.
    case publishing
    /// The copy is published: linked under its final name and its directory fsynced (a pull
    /// from another host records it; the source's endpoint removes the source only after it).
    case published
    /// The source was removed: the file is only at the target.
    case sourceRemoved = "source_removed"

    /// True when a copy may exist at the target.
    public var mayHaveCopyAtTarget: Bool { self != .copying }
}

/// The fields of a `job:<cid>` hash: the one list of their names (the Lua scripts spell the same
/// names; a test compares the two).
public enum JobField: String, Sendable, CaseIterable {
    case cid, count, filename, target, status, attempts, checksum, bytes, gen, part, stage, reason
    case dbLevel = "db_level"
    case workerID = "worker_id"
    case lastError = "last_error"
    /// The error of an attempt before the one that succeeded (history, not a current problem).
    case earlierError = "earlier_error"
    /// The delivery token: bumped by every claim; every call a delivery makes carries it, and a
    /// call with an older token is refused (the delivery is no longer the job's).
    case token
    /// The token of a delivery that was reaped while it may still act (a paused process): until
    /// a later delivery has taken the content's lock, the job is neither reversed nor re-aimed.
    case fence
    case enqueuedAt = "enqueued_at"
    case updatedAt = "updated_at"
    /// When the current delivery claimed the job (ms), for a move's rate and ETA.
    case startedAt = "started_at"
    case nextTarget = "next_target"
    /// Bytes copied so far by the delivery in flight, and the size of the file it copies.
    case bytesDone = "bytes_done"
    case bytesTotal = "bytes_total"
    /// Bytes of the job's temporary file that a delivery pulling it from another host fsynced and
    /// recorded: kept across deliveries (a later one resumes after them, once the source is found
    /// to begin with the same bytes), gone with the ack.
    case verified
    /// The credential of the delivery pulling the file from another host: `<token>:<digest>`, the
    /// delivery's token and the SHA-256 (hex) of the random secret it sends in
    /// `Relocator-Secret` (`TransferProtocol.transferKey`). Recorded with the token checked, so
    /// only the live delivery sets it; the secret itself is never stored.
    case transferKey = "transfer_key"
    /// The version (`Relocator-Version`: device, inode, size, times) of the source a pull from
    /// another host copied, recorded with its checksum (`stage=publishing`): the source's worker
    /// removes the source only while it is still that version, and a delivery that finds the copy
    /// published asks for that one.
    case sourceVersion = "source_version"
    /// Where a delivery pulling the file from another host pulls it from, and to which host
    /// (`PullRoute.stored`): recorded with the token checked once the source is located, cleared by
    /// the next claim (a later delivery may move the file on one host).
    case pulledFrom = "pulled_from"
    /// Why a deferred job waits, and until when (ms).
    case deferReason = "defer_reason"
    case dueAt = "due_at"
    /// Who queued the job and the rule that chose its target (`QueuedBy`), written when the job
    /// is created or re-aimed.
    case queuedBy = "queued_by"
    /// Who asked for the `next_target` of a job in flight: the follow-up's `queued_by` once it starts.
    case nextQueuedBy = "next_queued_by"
    /// When the job's last count was sent (ms, Redis' clock), when it was not its first (that one
    /// was sent when the job was enqueued); 0 for a job a plan's move created, which has no count.
    /// Its commit scores the content where it arrives by that count as of then (`committed.lua`).
    case countedAt = "counted_at"
}

extension JobField {
    /// Its place in `allCases` (the order of the declaration): a field's slot in a table of
    /// values read without a dictionary (`Job.decode(values:)`).
    public var ordinal: Int {
        switch self {
        case .cid: 0
        case .count: 1
        case .filename: 2
        case .target: 3
        case .status: 4
        case .attempts: 5
        case .checksum: 6
        case .bytes: 7
        case .gen: 8
        case .part: 9
        case .stage: 10
        case .reason: 11
        case .dbLevel: 12
        case .workerID: 13
        case .lastError: 14
        case .earlierError: 15
        case .token: 16
        case .fence: 17
        case .enqueuedAt: 18
        case .updatedAt: 19
        case .startedAt: 20
        case .nextTarget: 21
        case .bytesDone: 22
        case .bytesTotal: 23
        case .verified: 24
        case .transferKey: 25
        case .sourceVersion: 26
        case .pulledFrom: 27
        case .deferReason: 28
        case .dueAt: 29
        case .queuedBy: 30
        case .nextQueuedBy: 31
        case .countedAt: 32
        }
    }

    /// Every field's name as bytes, in `allCases` order (to recognise a field in a reply without
    /// building a string).
    public static let names: [[UInt8]] = allCases.map { Array($0.rawValue.utf8) }
}

/// A relocation job as stored in the `job:<cid>` hash.
public struct Job: Equatable, Sendable {
    public var cid: Int64
    public var count: Int64
    public var filename: String
    /// The level the file is on (where it is moved from).
    public var dbLevel: String
    /// The level it is moved to.
    public var target: String
    public var status: JobStatus
    public var attempts: Int
    public var workerID: String?
    public var lastError: String?
    /// The error code of the last failure (`MoveError` kinds: `no_space`, `unsafe_path`…).
    public var reason: String?
    public var earlierError: String?
    public var checksum: String?
    public var bytes: Int64?
    public var gen: Int64
    public var enqueuedAt: Int64
    public var updatedAt: Int64
    public var startedAt: Int64?
    public var nextTarget: String?
    /// The temporary file the last delivery was writing, if it crossed filesystems.
    public var part: String?
    public var stage: MoveStage?
    public var bytesDone: Int64?
    public var bytesTotal: Int64?
    /// Bytes verified by a pull from another host (see `JobField.verified`).
    public var verified: Int64?
    /// The credential of a pull from another host (see `JobField.transferKey`).
    public var transferKey: String?
    /// The source version a pull from another host copied (see `JobField.sourceVersion`).
    public var sourceVersion: String?
    /// The two hosts of a pull from another host (see `JobField.pulledFrom`); nil for a move on one host.
    public var pulledFrom: PullRoute?
    public var deferReason: String?
    public var dueAt: Int64?
    /// The delivery token of the last claim (nil before any).
    public var token: Int64?
    /// A reaped delivery that may still act (see `JobField.fence`).
    public var fence: Int64?
    /// Who queued the job, and why its target.
    public var queuedBy: QueuedBy?
    /// Who asked for `nextTarget`.
    public var nextQueuedBy: QueuedBy?

    /// The delivery token as the queue's calls carry it ("" before any claim).
    public var deliveryToken: String { token.map(String.init) ?? "" }

    /// The id that sits in the lists: `<cid>:<gen>`.
    public var id: String { JobID(cid: cid, gen: gen).description }

    public init(cid: Int64, count: Int64, filename: String, dbLevel: String, target: String, status: JobStatus,
                attempts: Int = 0, workerID: String? = nil, lastError: String? = nil, checksum: String? = nil,
                bytes: Int64? = nil, gen: Int64, enqueuedAt: Int64, updatedAt: Int64, nextTarget: String? = nil) {
        self.cid = cid
        self.count = count
        self.filename = filename
        self.dbLevel = dbLevel
        self.target = target
        self.status = status
        self.attempts = attempts
        self.workerID = workerID
        self.lastError = lastError
        self.checksum = checksum
        self.bytes = bytes
        self.gen = gen
        self.enqueuedAt = enqueuedAt
        self.updatedAt = updatedAt
        self.nextTarget = nextTarget
    }

    /// Why a hash is not a job: the field that is missing or malformed.
    public struct DecodingError: Error, CustomStringConvertible, Equatable, Sendable {
        public let field: JobField
        public let value: String?
        public var description: String {
            guard let value else { return "the job has no '\(field.rawValue)' field" }
            return "the job's '\(field.rawValue)' field is malformed: '\(value.prefix(80))'"
        }
    }

    /// Reads the hash fields. Every string is taken as it is — `null` is a filename like any other —
    /// and an empty value counts as absent.
    public static func decode(_ hash: [String: String]) -> Result<Job, DecodingError> {
        decode { hash[$0.rawValue] }
    }

    /// Reads the values of a table indexed by `JobField.ordinal` (nil: absent), by the same rules
    /// as a hash.
    public static func decode(values: [String?]) -> Result<Job, DecodingError> {
        decode { field in
            let index = field.ordinal
            return index < values.count ? values[index] : nil
        }
    }

    /// Reads the fields as `value` gives them (nil: absent), by the same rules as a hash.
    public static func decode(_ value: (JobField) -> String?) -> Result<Job, DecodingError> {
        func text(_ field: JobField) -> String? { value(field).flatMap { $0.isEmpty ? nil : $0 } }
        func required(_ field: JobField) throws(DecodingError) -> String {
            guard let value = text(field) else { throw DecodingError(field: field, value: nil) }
            return value
        }
        func number(_ field: JobField) throws(DecodingError) -> Int64? {
            guard let value = text(field) else { return nil }
            guard let number = Int64(value) else { throw DecodingError(field: field, value: value) }
            return number
        }
        do throws(DecodingError) {
            guard let cid = try number(.cid) else { throw DecodingError(field: .cid, value: nil) }
            guard let gen = try number(.gen) else { throw DecodingError(field: .gen, value: nil) }
            let statusText = try required(.status)
            guard let status = JobStatus(rawValue: statusText) else { throw DecodingError(field: .status, value: statusText) }
            var job = Job(cid: cid, count: try number(.count) ?? 0, filename: try required(.filename),
                          dbLevel: try required(.dbLevel), target: try required(.target), status: status,
                          attempts: Int(try number(.attempts) ?? 0), workerID: text(.workerID), lastError: text(.lastError),
                          checksum: text(.checksum), bytes: try number(.bytes), gen: gen,
                          enqueuedAt: try number(.enqueuedAt) ?? 0, updatedAt: try number(.updatedAt) ?? 0,
                          nextTarget: text(.nextTarget))
            job.reason = text(.reason)
            job.earlierError = text(.earlierError)
            job.startedAt = try number(.startedAt)
            job.part = text(.part)
            if let stage = text(.stage) {
                guard let value = MoveStage(rawValue: stage) else { throw DecodingError(field: .stage, value: stage) }
                job.stage = value
            }
            job.bytesDone = try number(.bytesDone)
            job.bytesTotal = try number(.bytesTotal)
            job.verified = try number(.verified)
            job.transferKey = text(.transferKey)
            job.sourceVersion = text(.sourceVersion)
            // Shown, never acted on: one that does not parse is not shown, and the job still moves.
            job.pulledFrom = text(.pulledFrom).flatMap(PullRoute.init(stored:))
            job.deferReason = text(.deferReason)
            job.dueAt = try number(.dueAt)
            job.token = try number(.token)
            job.fence = try number(.fence)
            job.queuedBy = text(.queuedBy).map(QueuedBy.init(stored:))
            job.nextQueuedBy = text(.nextQueuedBy).map(QueuedBy.init(stored:))
            return .success(job)
        } catch {
            return .failure(error)
        }
    }

    /// The job, or nil when the hash is empty or not a job.
    public init?(hash: [String: String]) {
        guard case .success(let job) = Self.decode(hash) else { return nil }
        self = job
    }

    /// Every field as text (absent ones as nil).
    public var fields: [(JobField, String?)] {
        [
            (.cid, String(cid)), (.count, String(count)), (.filename, filename), (.dbLevel, dbLevel),
            (.target, target), (.status, status.rawValue), (.attempts, String(attempts)), (.workerID, workerID),
            (.lastError, lastError), (.reason, reason), (.earlierError, earlierError), (.checksum, checksum),
            (.bytes, bytes.map(String.init)), (.gen, String(gen)), (.enqueuedAt, String(enqueuedAt)),
            (.updatedAt, String(updatedAt)), (.startedAt, startedAt.map(String.init)), (.nextTarget, nextTarget),
            (.part, part), (.stage, stage?.rawValue), (.bytesDone, bytesDone.map(String.init)),
            (.bytesTotal, bytesTotal.map(String.init)), (.verified, verified.map(String.init)),
            (.transferKey, transferKey), (.sourceVersion, sourceVersion),
            (.pulledFrom, pulledFrom?.stored), (.deferReason, deferReason), (.dueAt, dueAt.map(String.init)),
            (.token, token.map(String.init)), (.fence, fence.map(String.init)),
            (.queuedBy, queuedBy?.stored), (.nextQueuedBy, nextQueuedBy?.stored),
        ]
    }
}

/// The two hosts of a move between levels on different hosts: the live worker the file is pulled
/// from (its id and transfer address) and the host of the worker that pulls it (the target's).
public struct PullRoute: Equatable, Sendable {
    /// The id of the source's worker.
    public var sourceWorker: String
    /// The transfer address (`host:port`) the source's worker advertises.
    public var sourceAddress: String
    /// The host name of the worker that pulls the file (it holds the target level).
    public var targetHost: String

    public init(sourceWorker: String, sourceAddress: String, targetHost: String) {
        self.sourceWorker = sourceWorker
        self.sourceAddress = sourceAddress
        self.targetHost = targetHost
    }

    /// As the job's `pulled_from` field holds it: the three, one a line (none holds a line break;
    /// one that would is recorded with it replaced by a space).
    public var stored: String {
        [sourceWorker, sourceAddress, targetHost].map { $0.replacingLineBreaks }.joined(separator: "\n")
    }

    /// The route of a `pulled_from` field; nil unless it holds exactly three lines.
    public init?(stored: String) {
        let parts = stored.split(separator: "\n", omittingEmptySubsequences: false)
        guard parts.count == 3 else { return nil }
        self.init(sourceWorker: String(parts[0]), sourceAddress: String(parts[1]), targetHost: String(parts[2]))
    }

    /// `worker w (host:port) → host`, as `why`, `status` and the dashboard show it.
    public var sentence: String { "worker \(sourceWorker) (\(sourceAddress)) → \(targetHost)" }
}

extension String {
    fileprivate var replacingLineBreaks: String {
        String(map { $0.isNewline ? " " : $0 })
    }
}

/// `<cid>:<gen>`, the id of one generation of a content's job.
public struct JobID: Hashable, Sendable, CustomStringConvertible {
    public var cid: Int64
    public var gen: Int64

    public init(cid: Int64, gen: Int64) {
        self.cid = cid
        self.gen = gen
    }

    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let cid = Int64(parts[0]), let gen = Int64(parts[1]) else { return nil }
        self.init(cid: cid, gen: gen)
    }

    public var description: String { "\(cid):\(gen)" }
}

/// The fields of a worker's or committer's heartbeat hash (`worker:<id>`).
public enum WorkerField: String, Sendable, CaseIterable {
    case kind, host, pid, levels, concurrency, held, paused
    case startedAt = "started_at"
    case beatAt = "beat_at"
    /// `level=used,free,size;…` from the worker's `statvfs` of its level directories.
    case disks
    /// `level=device;…`: the device (`st_dev`) of the filesystem holding each level's directory on
    /// the worker's host (`DiskReport.Usage.filesystem`).
    case filesystems
    /// `level=directory,…` as this worker sees them.
    case directories
    /// Levels out of service for this worker (their directory is no longer the one it checked at
    /// start), comma-separated.
    case unavailable
    /// The port of the process's metrics server (`GET /metrics`), when it serves one.
    case metricsPort = "metrics_port"
    /// The address (`host:port`) where the worker serves its levels' files to other workers'
    /// transfers (`--transfer-advertise`); absent when it serves none.
    case transfer
    /// `1` when that endpoint speaks TLS only (`--transfer-tls-cert`): other workers and
    /// `reconcile` reach it over TLS, checking its certificate; absent for plain HTTP.
    case transferTLS = "transfer_tls"

    /// The value of `transferTLS` for an endpoint that speaks TLS only.
    public static let transferTLSOn = "1"
}

/// Counters kept per shard in the `stats` hash.
public enum StatField: String, Sendable, CaseIterable {
    case moved, retried, dead, committed
    case movedBytes = "moved_bytes"
}
