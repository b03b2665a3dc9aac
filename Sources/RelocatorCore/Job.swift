/// Where a relocation job is in its life: `queued → moving → done → committed`, with `retrying` and
/// `dead` on the failure side.
public enum JobStatus: String, Sendable, Codable, CaseIterable {
    case queued, moving, done, committed, retrying, dead

    /// The word the original `/post_sentence` answered for this status.
    public var compatName: String { self == .queued ? "update" : rawValue }
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
    public var checksum: String?
    public var bytes: Int64?
    public var gen: Int64
    public var enqueuedAt: Int64
    public var updatedAt: Int64
    public var nextTarget: String?
    /// The temporary file the last delivery was writing, if it crossed filesystems.
    public var part: String?

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

    /// Reads the hash fields; nil when a required field is missing or malformed (a hash written by
    /// something else, or with nulls), so callers can report it instead of crashing.
    public init?(hash: [String: String]) {
        func nonEmpty(_ key: String) -> String? { hash[key].flatMap { $0.isEmpty || $0 == "null" ? nil : $0 } }
        guard let cid = nonEmpty("cid").flatMap(Int64.init), let filename = nonEmpty("filename"),
              let dbLevel = nonEmpty("db_level"), let target = nonEmpty("target"),
              let status = nonEmpty("status").flatMap(JobStatus.init(rawValue:)),
              let gen = nonEmpty("gen").flatMap(Int64.init)
        else { return nil }
        self.init(
            cid: cid, count: nonEmpty("count").flatMap(Int64.init) ?? 0, filename: filename, dbLevel: dbLevel,
            target: target, status: status, attempts: nonEmpty("attempts").flatMap(Int.init) ?? 0,
            workerID: nonEmpty("worker_id"), lastError: nonEmpty("last_error"), checksum: nonEmpty("checksum"),
            bytes: nonEmpty("bytes").flatMap(Int64.init), gen: gen,
            enqueuedAt: nonEmpty("enqueued_at").flatMap(Int64.init) ?? 0,
            updatedAt: nonEmpty("updated_at").flatMap(Int64.init) ?? 0, nextTarget: nonEmpty("next_target")
        )
        part = nonEmpty("part")
    }

    /// Every field as text (absent ones as nil), in the hash's names.
    public var fields: [(String, String?)] {
        [
            ("cid", String(cid)), ("count", String(count)), ("filename", filename), ("db_level", dbLevel),
            ("target", target), ("status", status.rawValue), ("attempts", String(attempts)), ("worker_id", workerID),
            ("last_error", lastError), ("checksum", checksum), ("bytes", bytes.map(String.init)), ("gen", String(gen)),
            ("enqueued_at", String(enqueuedAt)), ("updated_at", String(updatedAt)), ("next_target", nextTarget),
            ("part", part),
        ]
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
        let parts = text.split(separator: ":")
        guard parts.count == 2, let cid = Int64(parts[0]), let gen = Int64(parts[1]) else { return nil }
        self.init(cid: cid, gen: gen)
    }

    public var description: String { "\(cid):\(gen)" }
}
