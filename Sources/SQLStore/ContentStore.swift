import RelocatorCore

/// A row of the original `contents` table.
public struct Content: Equatable, Sendable {
    public var cid: Int64
    public var filename: String
    public var level: String
    public var updateTime: String?

    public init(cid: Int64, filename: String, level: String, updateTime: String? = nil) {
        self.cid = cid
        self.filename = filename
        self.level = level
        self.updateTime = updateTime
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

    public init(jobID: String, cid: Int64, from: String, to: String, bytes: Int64, checksum: String, worker: String, attempts: Int) {
        self.jobID = jobID
        self.cid = cid
        self.from = from
        self.to = to
        self.bytes = bytes
        self.checksum = checksum
        self.worker = worker
        self.attempts = attempts
    }
}

/// A row of `relocations`.
public struct Relocation: Equatable, Sendable, Codable {
    public var jobID: String
    public var cid: Int64
    public var from: String
    public var to: String
    public var bytes: Int64
    public var checksum: String
    public var worker: String
    public var attempts: Int
    public var movedAt: String
}

/// The contents, levels and relocations tables.
public struct ContentStore {
    public let database: any SQLDatabase

    public init(database: any SQLDatabase) {
        self.database = database
    }

    public func content(cid: Int64) throws -> Content? {
        try database.query("SELECT cid, filename, content_level, update_time FROM contents WHERE cid = \(cid)").first.map {
            Content(cid: try $0.decode("cid"), filename: try $0.decode("filename"), level: try $0.decode("content_level"),
                    updateTime: try $0.decodeIfPresent("update_time"))
        }
    }

    /// Every content, by cid.
    public func contents() throws -> [Content] {
        try database.query("SELECT cid, filename, content_level, update_time FROM contents ORDER BY cid").map {
            Content(cid: try $0.decode("cid"), filename: try $0.decode("filename"), level: try $0.decode("content_level"),
                    updateTime: try $0.decodeIfPresent("update_time"))
        }
    }

    /// Records where a content's file really is (reconcile), without a relocation row.
    public func setLevel(cid: Int64, level: String) throws {
        try database.execute("UPDATE contents SET content_level = \(level), update_time = \(now: ()) WHERE cid = \(cid)")
    }

    /// Adds a content, or changes its filename and level.
    public func put(_ content: Content) throws {
        let d = database.dialect
        try database.execute("""
            INSERT INTO contents (cid, filename, content_level) VALUES (\(content.cid), \(content.filename), \(content.level))
            \(unsafeSQL: d.upsertClause(conflict: ["cid"], update: ["filename", "content_level"]))
            """)
    }

    /// The original rule: a count above the top level's `max_counts` raises it. Only ever raises.
    public func raiseMaxCounts(level: String, to count: Int64) throws {
        try database.execute("UPDATE level SET max_counts = \(count) WHERE content_level = \(level) AND max_counts < \(count)")
    }

    /// Writes a batch of verified moves in one transaction: each content's new level and update
    /// time, and one `relocations` row per job. A job already recorded (a batch delivered twice) is
    /// not recorded again.
    public func commit(_ entries: [CommitEntry]) throws {
        if entries.isEmpty { return }
        let d = database.dialect
        let insert = d.insertIgnoring(
            into: "relocations", columns: ["job_id", "cid", "from_level", "to_level", "bytes", "checksum", "worker", "attempts"],
            conflict: ["job_id"])
        try database.transaction {
            for entry in entries {
                try database.execute("""
                    UPDATE contents SET content_level = \(entry.to), update_time = \(now: ()) WHERE cid = \(entry.cid)
                    """)
                try database.execute("""
                    \(unsafeSQL: insert.head) VALUES (\(entry.jobID), \(entry.cid), \(entry.from), \(entry.to), \(entry.bytes),
                    \(entry.checksum), \(entry.worker), \(entry.attempts)) \(unsafeSQL: insert.tail)
                    """)
            }
        }
    }

    /// The latest relocations, newest first.
    public func relocations(limit: Int = 100) throws -> [Relocation] {
        try database.query("""
            SELECT job_id, cid, from_level, to_level, bytes, checksum, worker, attempts, moved_at
            FROM relocations ORDER BY id DESC LIMIT \(limit)
            """).map {
            Relocation(jobID: try $0.decode("job_id"), cid: try $0.decode("cid"), from: try $0.decode("from_level"),
                       to: try $0.decode("to_level"), bytes: try $0.decode("bytes"), checksum: try $0.decode("checksum"),
                       worker: try $0.decode("worker"), attempts: try $0.decode("attempts"), movedAt: try $0.decode("moved_at"))
        }
    }
}
