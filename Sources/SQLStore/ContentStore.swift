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

extension CommitEntry {
    /// What a done job records.
    public init(_ job: Job) {
        self.init(jobID: job.id, cid: job.cid, from: job.dbLevel, to: job.target, bytes: job.bytes ?? 0,
                  checksum: job.checksum ?? "", worker: job.workerID ?? "", attempts: job.attempts)
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
        try database.query("SELECT cid, filename, content_level, update_time FROM contents WHERE cid = \(cid)").first.map(Self.content)
    }

    /// Every content, by cid.
    public func contents() throws -> [Content] {
        try database.query("SELECT cid, filename, content_level, update_time FROM contents ORDER BY cid").map(Self.content)
    }

    private static func content(_ row: SQLRow) throws -> Content {
        Content(cid: try row.decode("cid"), filename: try row.decode("filename"), level: try row.decode("content_level"),
                updateTime: try row.decodeIfPresent("update_time"))
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
    /// not recorded again. Rows go in multi-row statements of up to 500 jobs.
    public func commit(_ entries: [CommitEntry]) throws {
        if entries.isEmpty { return }
        try database.transaction {
            var start = 0
            while start < entries.count {
                let chunk = Array(entries[start..<min(start + 500, entries.count)])
                start += chunk.count
                try updateLevels(Self.latestPerContent(chunk))
                try insertRelocations(chunk)
            }
        }
    }

    /// One entry per content: the newest job (highest gen) wins, so a batch holding an older
    /// delivery too can never set an older level.
    static func latestPerContent(_ entries: [CommitEntry]) -> [CommitEntry] {
        var latest: [Int64: CommitEntry] = [:]
        for entry in entries {
            if let kept = latest[entry.cid], gen(kept.jobID) > gen(entry.jobID) { continue }
            latest[entry.cid] = entry
        }
        return latest.values.sorted { $0.cid < $1.cid }
    }

    private static func gen(_ jobID: String) -> Int64 { JobID(jobID)?.gen ?? 0 }

    private func updateLevels(_ entries: [CommitEntry]) throws {
        let d = database.dialect
        switch d {
        case .postgres:
            let tuples = Array(repeating: "(?::bigint, ?::varchar)", count: entries.count).joined(separator: ", ")
            try database.execute(SQLQuery(unsafeSQL: """
                UPDATE contents SET content_level = v.level, update_time = \(d.currentTime)
                FROM (VALUES \(tuples)) AS v(cid, level) WHERE contents.cid = v.cid
                """, binds: entries.flatMap { [.int($0.cid), .text($0.to)] }))
        case .mysql:
            let rows = Array(repeating: "SELECT ? AS cid, ? AS level", count: entries.count).joined(separator: " UNION ALL ")
            try database.execute(SQLQuery(unsafeSQL: """
                UPDATE contents AS c JOIN (\(rows)) AS v ON c.cid = v.cid
                SET c.content_level = v.level, c.update_time = \(d.currentTime)
                """, binds: entries.flatMap { [.int($0.cid), .text($0.to)] }))
        case .sqlite:
            // In-process: one statement per row costs no round trip.
            for entry in entries {
                try database.execute("UPDATE contents SET content_level = \(entry.to), update_time = \(now: ()) WHERE cid = \(entry.cid)")
            }
        }
    }

    private func insertRelocations(_ entries: [CommitEntry]) throws {
        let insert = database.dialect.insertIgnoring(
            into: "relocations", columns: ["job_id", "cid", "from_level", "to_level", "bytes", "checksum", "worker", "attempts"],
            conflict: ["job_id"])
        let tuples = Array(repeating: "(?, ?, ?, ?, ?, ?, ?, ?)", count: entries.count).joined(separator: ", ")
        let binds: [SQLValue] = entries.flatMap {
            [.text($0.jobID), .int($0.cid), .text($0.from), .text($0.to), .int($0.bytes), .text($0.checksum), .text($0.worker), .int(Int64($0.attempts))]
        }
        try database.execute(SQLQuery(unsafeSQL: "\(insert.head) VALUES \(tuples) \(insert.tail)", binds: binds))
    }

    /// The contents of many cids at once (for bulk submission), in chunks of 1,000.
    public func contents(cids: [Int64]) throws -> [Int64: Content] {
        var found: [Int64: Content] = [:]
        var start = 0
        while start < cids.count {
            let chunk = Array(cids[start..<min(start + 1000, cids.count)])
            start += chunk.count
            let marks = Array(repeating: "?", count: chunk.count).joined(separator: ", ")
            let rows = try database.query(SQLQuery(unsafeSQL: "SELECT cid, filename, content_level, update_time FROM contents WHERE cid IN (\(marks))",
                                                   binds: chunk.map { .int($0) }))
            for row in rows {
                let content = try Self.content(row)
                found[content.cid] = content
            }
        }
        return found
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
