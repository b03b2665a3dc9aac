/// The rows of the store: contents, relocations and what edits of the level table did.

/// A row of the original `contents` table.
/// JSON: `{"cid": 7, "filename": "g.mp4", "level": "silver", "update_time": "2026-11-27T21:47:15.123Z"}`.
public struct Content: Equatable, Sendable, Codable {
    public var cid: Int64
    public var filename: String
    public var level: String
    /// When the level last changed, RFC 3339 UTC; nil when never recorded.
    public var updateTime: String?

    public init(cid: Int64, filename: String, level: String, updateTime: String? = nil) {
        self.cid = cid
        self.filename = filename
        self.level = level
        self.updateTime = updateTime
    }

    enum CodingKeys: String, CodingKey {
        case cid, filename, level
        case updateTime = "update_time"
    }
}

/// One verified move to record: the content's new level and a `relocations` row.
public struct CommitEntry: Equatable, Sendable {
    public var jobID: String
    public var cid: Int64
    public var from: String
    public var to: String
    public var bytes: Int64
    public var checksum: String
    public var worker: String
    public var attempts: Int
    /// The job's generation: of two jobs of one content, the higher gen is the newer.
    public var gen: Int64

    /// `gen` defaults to the one in `jobID` (`<cid>:<gen>`), 0 when it holds none.
    public init(jobID: String, cid: Int64, from: String, to: String, bytes: Int64, checksum: String, worker: String,
                attempts: Int, gen: Int64? = nil) {
        self.jobID = jobID
        self.cid = cid
        self.from = from
        self.to = to
        self.bytes = bytes
        self.checksum = checksum
        self.worker = worker
        self.attempts = attempts
        self.gen = gen ?? JobID(jobID)?.gen ?? 0
    }
}

extension CommitEntry {
    /// What a done job records.
    public init(_ job: Job) {
        self.init(jobID: job.id, cid: job.cid, from: job.dbLevel, to: job.target, bytes: job.bytes ?? 0,
                  checksum: job.checksum ?? "", worker: job.workerID ?? "", attempts: job.attempts, gen: job.gen)
    }
}

/// How many moves went from one level to another, and their bytes.
public struct LevelMoves: Equatable, Sendable {
    public var from: String
    public var to: String
    public var moves: Int64
    public var bytes: Int64

    public init(from: String, to: String, moves: Int64, bytes: Int64) {
        self.from = from
        self.to = to
        self.moves = moves
        self.bytes = bytes
    }
}

/// A row of `relocations`: one committed move.
/// JSON: `{"job_id": "7:3", "cid": 7, "from": "bronze", "to": "silver", "bytes": 1048576,
/// "checksum": "…", "worker": "ssd-box-1", "attempts": 0, "moved_at": "2026-11-27T21:47:15.123Z", "gen": 3}`.
public struct Relocation: Equatable, Sendable, Codable {
    public var jobID: String
    public var cid: Int64
    public var from: String
    public var to: String
    public var bytes: Int64
    public var checksum: String
    public var worker: String
    public var attempts: Int
    /// When the move was committed, RFC 3339 UTC.
    public var movedAt: String
    /// The job's generation; nil for rows recorded before generations were.
    public var gen: Int64?

    public init(jobID: String, cid: Int64, from: String, to: String, bytes: Int64, checksum: String, worker: String,
                attempts: Int, movedAt: String, gen: Int64?) {
        self.jobID = jobID
        self.cid = cid
        self.from = from
        self.to = to
        self.bytes = bytes
        self.checksum = checksum
        self.worker = worker
        self.attempts = attempts
        self.movedAt = movedAt
        self.gen = gen
    }

    enum CodingKeys: String, CodingKey {
        case jobID = "job_id"
        case cid, from, to, bytes, checksum, worker, attempts
        case movedAt = "moved_at"
        case gen
    }
}

/// What raising a level's `max_counts` did.
public struct MaxCountsRaise: Equatable, Sendable {
    public var level: String
    /// True when the row was raised.
    public var changed: Bool
    /// `max_counts` before the call; nil when the level table has no such level.
    public var previous: Int64?

    public init(level: String, changed: Bool, previous: Int64?) {
        self.level = level
        self.changed = changed
        self.previous = previous
    }
}

/// What setting a level's range did.
public struct LevelRangeEdit: Equatable, Sendable {
    /// The level's row before the edit; nil when the edit added the level.
    public var previous: LevelRange?
    public var range: LevelRange
    /// What is wrong with the table after the edit: empty unless the edit was forced.
    public var problems: [LevelTable.Problem]

    public init(previous: LevelRange?, range: LevelRange, problems: [LevelTable.Problem]) {
        self.previous = previous
        self.range = range
        self.problems = problems
    }
}

