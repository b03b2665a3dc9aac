import RelocatorCore

/// The contents, levels and relocations tables.
public struct ContentStore {
    public let database: any SQLDatabase

    public init(database: any SQLDatabase) {
        self.database = database
    }

    private static let contentColumns = "cid, filename, content_level, update_time"

    public func content(cid: Int64) throws -> Content? {
        try database.query("SELECT \(unsafeSQL: Self.contentColumns) FROM contents WHERE cid = \(cid)").first.map(Self.content)
    }

    /// The content whose file has this name, nil when none.
    public func content(filename: String) throws -> Content? {
        try database.query("SELECT \(unsafeSQL: Self.contentColumns) FROM contents WHERE filename = \(filename)").first.map(Self.content)
    }

    /// Every content, by cid, read `page` rows a statement (from where the last page ended): each
    /// statement stays short whatever the table's size, far within the statement limit
    /// (`RELOCATOR_SQL_TIMEOUT_MS`) that one statement for tens of millions of rows would pass.
    public func contents(page: Int = 50_000) throws -> [Content] {
        let page = max(1, page)
        var all: [Content] = []
        var after: Int64?
        while true {
            let from: SQLQuery = after.map { (cid: Int64) -> SQLQuery in "WHERE cid > \(cid)" } ?? ""
            let rows = try database.query("SELECT \(unsafeSQL: Self.contentColumns) FROM contents \(from) ORDER BY cid LIMIT \(page)").map(Self.content)
            all += rows
            guard rows.count == page, let last = rows.last else { return all }
            after = last.cid
        }
    }

    /// A page of contents by cid (`relocator contents list`), optionally of one level only.
    public func contents(limit: Int, offset: Int = 0, level: String? = nil) throws -> [Content] {
        let filter: SQLQuery = level.map { (level: String) -> SQLQuery in "WHERE content_level = \(level)" } ?? ""
        let query: SQLQuery = "SELECT \(unsafeSQL: Self.contentColumns) FROM contents \(filter) ORDER BY cid LIMIT \(max(0, limit)) OFFSET \(max(0, offset))"
        return try database.query(query).map(Self.content)
    }

    private static func content(_ row: SQLRow) throws -> Content {
        Content(cid: try row.decode("cid"), filename: try row.decode("filename"), level: try row.decode("content_level"),
                updateTime: try row.decodeTimestampIfPresent("update_time"))
    }

    /// Removes a content's row (`relocator contents remove`); its relocations stay as history.
    /// False when there was none.
    @discardableResult
    public func remove(cid: Int64) throws -> Bool {
        try database.execute("DELETE FROM contents WHERE cid = \(cid)") > 0
    }

    /// Adds a content, or changes its filename and level. A filename that belongs to another
    /// content is refused (`.duplicateFilename`: "filename 'x' already belongs to cid 12"). Runs
    /// in the caller's transaction, if any.
    public func put(_ content: Content) throws {
        if let owner = try database.query("""
            SELECT cid FROM contents WHERE filename = \(content.filename) AND cid <> \(content.cid) ORDER BY cid LIMIT 1
            """).first {
            throw SQLError(code: .duplicateFilename, location: database.location,
                           message: "filename '\(content.filename)' already belongs to cid \(try owner.decode("cid", as: Int64.self))")
        }
        try insertContents([content], replacing: true)
    }

    /// Adds many contents, or changes their filenames, in one transaction, in multi-row statements
    /// of 500 (`relocator contents import`). An existing content keeps its level, whatever the row
    /// says: a level read before may be older than a move committed since, and a level changes
    /// only by a commit (`Commit.recordLevel` for an operator's change). Nothing is written when any filename is taken: by another
    /// content in the database, or by two rows of `contents` with different cids. A name that one
    /// content of the import gives up another may take, two contents may swap theirs. Filenames are
    /// compared as bytes (`FilenameKey`), as the index compares them. Returns how many rows were given.
    @discardableResult
    public func put(_ contents: [Content]) throws -> Int {
        if contents.isEmpty { return 0 }
        // The last row of a cid wins, as a row at a time would.
        var byCid: [Int64: Content] = [:]
        for content in contents { byCid[content.cid] = content }
        let rows = byCid.values.sorted { $0.cid < $1.cid }
        var byFilename: [FilenameKey: Int64] = [:]
        for content in rows {
            if let other = byFilename[FilenameKey(content.filename)] {
                throw SQLError(code: .duplicateFilename, location: database.location,
                               message: "filename '\(content.filename)' is given to both cid \(other) and cid \(content.cid)")
            }
            byFilename[FilenameKey(content.filename)] = content.cid
        }
        try database.transaction {
            // The rows already there, locked in cid order as a commit locks them.
            var before: [Int64: FilenameKey] = [:]
            try forChunks(of: rows, size: 500) { chunk in
                for row in try database.query(SQLQuery(
                    unsafeSQL: "SELECT cid, filename FROM contents WHERE cid IN (\(SQLDialect.marks(chunk.count))) ORDER BY cid\(database.dialect.forUpdate)",
                    binds: chunk.map { .int($0.cid) })) {
                    before[try row.decode("cid")] = FilenameKey(try row.decode("filename"))
                }
            }
            try forChunks(of: rows, size: 500) { chunk in
                let owners = try database.query(SQLQuery(
                    unsafeSQL: "SELECT cid, filename FROM contents WHERE filename IN (\(SQLDialect.marks(chunk.count))) ORDER BY cid",
                    binds: chunk.map { .text($0.filename) }))
                for owner in owners {
                    let cid: Int64 = try owner.decode("cid")
                    let filename: String = try owner.decode("filename")
                    // Taken, unless by this cid, or by a cid this import renames.
                    if let wanted = byFilename[FilenameKey(filename)], wanted != cid,
                       byCid[cid].map({ FilenameKey.same($0.filename, filename) }) ?? true {
                        throw SQLError(code: .duplicateFilename, location: database.location,
                                       message: "filename '\(filename)' already belongs to cid \(cid)")
                    }
                }
            }
            // The unique index checks each row as it is written: every content that changes its
            // name first gives up the old one for a name inside the reserved directory (which no
            // content may have), so that any other row of the import may take it.
            let renamed = rows.filter { row in before[row.cid].map { $0 != FilenameKey(row.filename) } ?? false }
            try forChunks(of: renamed, size: 500) { try setFilenames($0.map { ($0.cid, "\(ReservedDirectory.name)/renaming-\($0.cid)") }) }
            try forChunks(of: renamed, size: 500) { try setFilenames($0.map { ($0.cid, $0.filename) }) }
            // New contents by a plain INSERT: a name taken meanwhile is refused, never written over
            // (MariaDB's ON DUPLICATE KEY UPDATE would update the row that holds it).
            try forChunks(of: rows.filter { before[$0.cid] == nil }, size: 500) { try insertContents($0, replacing: false) }
            try forChunks(of: rows, size: 500) { try verifyFilenames($0) }
        }
        return contents.count
    }


    /// Gives existing contents these filenames, in one statement.
    private func setFilenames(_ names: [(cid: Int64, filename: String)]) throws {
        let cases = Array(repeating: "WHEN ? THEN ?", count: names.count).joined(separator: " ")
        try refusingTakenFilenames {
            try database.execute(SQLQuery(unsafeSQL: "UPDATE contents SET filename = CASE cid \(cases) END WHERE cid IN (\(SQLDialect.marks(names.count)))",
                                          binds: names.flatMap { [.int($0.cid), .text($0.filename)] } + names.map { .int($0.cid) }))
        }
    }

    /// Refuses the whole put unless every row reads back with the filename it was given, byte for
    /// byte: no row is ever left out in silence.
    private func verifyFilenames(_ rows: [Content]) throws {
        var written: [Int64: FilenameKey] = [:]
        for row in try database.query(SQLQuery(unsafeSQL: "SELECT cid, filename FROM contents WHERE cid IN (\(SQLDialect.marks(rows.count)))",
                                               binds: rows.map { .int($0.cid) })) {
            written[try row.decode("cid")] = FilenameKey(try row.decode("filename"))
        }
        for row in rows where written[row.cid] != FilenameKey(row.filename) {
            throw SQLError(code: .duplicateFilename, location: database.location,
                           message: "cid \(row.cid) does not read back as '\(row.filename)' after the write (is the name another content's?); nothing written")
        }
    }

    /// Inserts rows; `replacing` an existing row of the same cid (its filename and level), else a
    /// cid already there is refused.
    private func insertContents(_ rows: [Content], replacing: Bool) throws {
        let tuples = Array(repeating: "(?, ?, ?)", count: rows.count).joined(separator: ", ")
        let tail = replacing ? database.dialect.upsertClause(conflict: ["cid"], update: ["filename", "content_level"]) : ""
        try refusingTakenFilenames {
            try database.execute(SQLQuery(unsafeSQL: "INSERT INTO contents (cid, filename, content_level) VALUES \(tuples) \(tail)",
                                          binds: rows.flatMap { [.int($0.cid), .text($0.filename), .text($0.level)] }))
        }
    }

    /// The unique index on `contents(filename)` refusing a row that raced past the checks is
    /// reported as a duplicate filename too.
    private func refusingTakenFilenames(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch let error as SQLError where error.code == .constraintViolation
            && (error.message.contains("contents_filename") || error.message.contains("contents.filename")) {
            throw SQLError(code: .duplicateFilename, location: database.location,
                           message: "a filename of these contents already belongs to another content (\(error.message))",
                           serverCode: error.serverCode)
        }
    }

    func forChunks<T>(of items: [T], size: Int, _ body: ([T]) throws -> Void) throws {
        var start = 0
        while start < items.count {
            let chunk = Array(items[start..<min(start + size, items.count)])
            start += chunk.count
            try body(chunk)
        }
    }

    /// The original rule: a count above the top level's `max_counts` raises it. Only ever raises.
    /// (`LevelStore.raiseMaxCounts` also says whether it changed the row and what it held.)
    public func raiseMaxCounts(level: String, to count: Int64) throws {
        try database.execute("UPDATE level SET max_counts = \(count) WHERE content_level = \(level) AND max_counts < \(count)")
    }

    /// Writes a batch of verified moves in one transaction: one `relocations` row per job (a job
    /// already recorded — a batch delivered twice — is not recorded again), and each content's
    /// level and update time from its newest job, but only when that job is newer (higher gen) than
    /// every job recorded for the content before: a late commit of an older job never rolls a
    /// level back.
    ///
    /// Two commits at once (the committer and `/update_sentence`) are serialised by the contents
    /// rows: each locks the rows of its cids first, in cid order (`SELECT … FOR UPDATE`; SQLite
    /// serialises writers with `BEGIN IMMEDIATE`), then compares gens with what is committed by
    /// then (PostgreSQL and MariaDB both at READ COMMITTED). Rows go in multi-row statements of up to
    /// 500 jobs.
    public func commit(_ entries: [CommitEntry]) throws {
        if entries.isEmpty { return }
        let latest = Self.latestPerContent(entries)
        try database.transaction {
            try forChunks(of: latest, size: 500) { try lockContents($0.map(\.cid)) }
            // Levels first: the comparison must not see this batch's own relocation rows.
            try forChunks(of: latest, size: 500) { try updateLevels($0) }
            try forChunks(of: entries, size: 500) { try insertRelocations($0) }
        }
    }

    /// One entry per content, in cid order: the newest job (highest gen) wins, so a batch holding
    /// an older delivery too can never set an older level.
    static func latestPerContent(_ entries: [CommitEntry]) -> [CommitEntry] {
        var latest: [Int64: CommitEntry] = [:]
        for entry in entries {
            if let kept = latest[entry.cid], kept.gen > entry.gen { continue }
            latest[entry.cid] = entry
        }
        return latest.values.sorted { $0.cid < $1.cid }
    }

    private func lockContents(_ cids: [Int64]) throws {
        switch database.dialect {
        case .sqlite:
            return  // BEGIN IMMEDIATE holds the write lock already
        case .postgres:
            _ = try database.query(SQLQuery(unsafeSQL: "SELECT cid FROM contents WHERE cid = ANY(?::bigint[]) ORDER BY cid FOR UPDATE",
                                            binds: [PostgresArray.integers(cids)]))
        case .mysql:
            let marks = SQLDialect.marks(cids.count)
            _ = try database.query(SQLQuery(unsafeSQL: "SELECT cid FROM contents WHERE cid IN (\(marks)) ORDER BY cid FOR UPDATE",
                                            binds: cids.map { .int($0) }))
        }
    }

    /// Sets each content's level where its entry is newer than every recorded job of the content.
    private func updateLevels(_ entries: [CommitEntry]) throws {
        let d = database.dialect
        let newer = "v.gen > COALESCE((SELECT MAX(r.gen) FROM relocations r WHERE r.cid = v.cid), -1)"
        switch d {
        case .postgres:
            // Three array parameters rather than 1,500 scalars: far less to parse and plan.
            try database.execute(SQLQuery(unsafeSQL: """
                UPDATE contents SET content_level = v.level, update_time = \(d.currentTime)
                FROM unnest(?::bigint[], ?::varchar[], ?::bigint[]) AS v(cid, level, gen) WHERE contents.cid = v.cid AND \(newer)
                """, binds: [PostgresArray.integers(entries.map(\.cid)), PostgresArray.texts(entries.map(\.to)),
                             PostgresArray.integers(entries.map(\.gen))]))
        case .mysql:
            let rows = Array(repeating: "SELECT ? AS cid, ? AS level, ? AS gen", count: entries.count).joined(separator: " UNION ALL ")
            try database.execute(SQLQuery(unsafeSQL: """
                UPDATE contents AS c JOIN (\(rows)) AS v ON c.cid = v.cid
                SET c.content_level = v.level, c.update_time = \(d.currentTime) WHERE \(newer)
                """, binds: entries.flatMap { [.int($0.cid), .text($0.to), .int($0.gen)] }))
        case .sqlite:
            let tuples = Array(repeating: "(?, ?, ?)", count: entries.count).joined(separator: ", ")
            try database.execute(SQLQuery(unsafeSQL: """
                WITH v(cid, level, gen) AS (VALUES \(tuples))
                UPDATE contents SET content_level = v.level, update_time = \(d.currentTime)
                FROM v WHERE contents.cid = v.cid AND \(newer)
                """, binds: entries.flatMap { [.int($0.cid), .text($0.to), .int($0.gen)] }))
        }
    }

    private func insertRelocations(_ entries: [CommitEntry]) throws {
        if database.dialect == .postgres {
            try database.execute(SQLQuery(unsafeSQL: """
                INSERT INTO relocations (job_id, cid, from_level, to_level, bytes, checksum, worker, attempts, gen)
                SELECT * FROM unnest(?::varchar[], ?::bigint[], ?::varchar[], ?::varchar[], ?::bigint[], ?::varchar[], ?::varchar[], ?::integer[], ?::bigint[])
                ON CONFLICT (job_id) DO NOTHING
                """, binds: [
                    PostgresArray.texts(entries.map(\.jobID)), PostgresArray.integers(entries.map(\.cid)),
                    PostgresArray.texts(entries.map(\.from)), PostgresArray.texts(entries.map(\.to)),
                    PostgresArray.integers(entries.map(\.bytes)), PostgresArray.texts(entries.map(\.checksum)),
                    PostgresArray.texts(entries.map(\.worker)), PostgresArray.integers(entries.map { Int64($0.attempts) }),
                    PostgresArray.integers(entries.map(\.gen)),
                ]))
            return
        }
        let insert = database.dialect.insertIgnoring(
            into: "relocations", columns: ["job_id", "cid", "from_level", "to_level", "bytes", "checksum", "worker", "attempts", "gen"],
            conflict: ["job_id"])
        let tuples = Array(repeating: "(?, ?, ?, ?, ?, ?, ?, ?, ?)", count: entries.count).joined(separator: ", ")
        let binds: [SQLValue] = entries.flatMap {
            [.text($0.jobID), .int($0.cid), .text($0.from), .text($0.to), .int($0.bytes), .text($0.checksum), .text($0.worker),
             .int(Int64($0.attempts)), .int($0.gen)]
        }
        try database.execute(SQLQuery(unsafeSQL: "\(insert.head) VALUES \(tuples) \(insert.tail)", binds: binds))
    }

    /// The contents of many cids at once (for bulk submission), in chunks of 1,000.
    public func contents(cids: [Int64]) throws -> [Int64: Content] {
        var found: [Int64: Content] = [:]
        try forChunks(of: cids, size: 1000) { chunk in
            let marks = SQLDialect.marks(chunk.count)
            let rows = try database.query(SQLQuery(unsafeSQL: "SELECT \(Self.contentColumns) FROM contents WHERE cid IN (\(marks))",
                                                   binds: chunk.map { .int($0) }))
            for row in rows {
                let content = try Self.content(row)
                found[content.cid] = content
            }
        }
        return found
    }

    private static let relocationColumns = "job_id, cid, from_level, to_level, bytes, checksum, worker, attempts, moved_at, gen"

    /// The latest relocations, newest first; of one content only when `cid` is given.
    public func relocations(cid: Int64? = nil, limit: Int = 100) throws -> [Relocation] {
        let filter: SQLQuery = cid.map { (cid: Int64) -> SQLQuery in "WHERE cid = \(cid)" } ?? ""
        return try database.query("""
            SELECT \(unsafeSQL: Self.relocationColumns) FROM relocations \(filter) ORDER BY id DESC LIMIT \(max(0, limit))
            """).map(Self.relocation)
    }

    /// A page of the relocations, newest first (of one content when `cid` is given): at most
    /// `limit` rows with an id below `before` (the `next` of the page before), the total, and the
    /// id to pass as `before` for the next page (nil on the last). Rows added meanwhile have higher
    /// ids, so no page repeats or skips one.
    public func relocationsPage(cid: Int64?, before: Int64?, limit: Int) throws -> (rows: [Relocation], total: Int, next: Int64?) {
        let cidFilter: SQLQuery = cid.map { (cid: Int64) -> SQLQuery in "AND cid = \(cid)" } ?? ""
        let beforeFilter: SQLQuery = before.map { (id: Int64) -> SQLQuery in "AND id < \(id)" } ?? ""
        let limit = max(1, limit)
        let rows = try database.query("""
            SELECT id, \(unsafeSQL: Self.relocationColumns) FROM relocations WHERE 1 = 1 \(cidFilter) \(beforeFilter) ORDER BY id DESC LIMIT \(limit + 1)
            """)
        let total = try database.query("SELECT COUNT(*) AS n FROM relocations WHERE 1 = 1 \(cidFilter)").first?.decode("n", as: Int.self) ?? 0
        let page = Array(rows.prefix(limit))
        let next = rows.count > limit ? try page.last?.decode("id", as: Int64.self) : nil
        return (try page.map(Self.relocation), total, next)
    }

    /// Moves and bytes from level to level among the relocations committed in the last `seconds`,
    /// looking at the newest `newest` rows at most (so a busy table costs one bounded scan of its
    /// primary key): `complete` is false when those rows were all within the window (there may be more).
    public func recentMoves(withinSeconds seconds: Int, newest: Int = 20_000) throws -> (counts: [LevelMoves], complete: Bool) {
        let dialect = database.dialect
        let rows = try database.query("""
            SELECT from_level, to_level, COUNT(*) AS moves, SUM(bytes) AS bytes FROM \
            (SELECT from_level, to_level, bytes, moved_at FROM relocations ORDER BY id DESC LIMIT \(max(1, newest))) recent \
            WHERE moved_at >= \(unsafeSQL: dialect.timeAgo(seconds: seconds)) GROUP BY from_level, to_level
            """)
        let counts = try rows.map { row in
            LevelMoves(from: try row.decode("from_level"), to: try row.decode("to_level"), moves: try row.decode("moves"),
                       bytes: Int64(clamping: try row.decodeIfPresent("bytes", as: Double.self) ?? 0))
        }
        return (counts.sorted { ($0.from, $0.to) < ($1.from, $1.to) }, counts.reduce(0) { $0 + $1.moves } < Int64(max(1, newest)))
    }

    /// Every committed move of one content, oldest first (`relocator why`): where it came from and
    /// went, bytes, checksum, when, which job.
    public func history(cid: Int64) throws -> [Relocation] {
        try database.query("SELECT \(unsafeSQL: Self.relocationColumns) FROM relocations WHERE cid = \(cid) ORDER BY id")
            .map(Self.relocation)
    }

    private static func relocation(_ row: SQLRow) throws -> Relocation {
        Relocation(jobID: try row.decode("job_id"), cid: try row.decode("cid"), from: try row.decode("from_level"),
                   to: try row.decode("to_level"), bytes: try row.decode("bytes"), checksum: try row.decode("checksum"),
                   worker: try row.decode("worker"), attempts: try row.decode("attempts"),
                   movedAt: try row.decodeTimestamp("moved_at"), gen: try row.decodeIfPresent("gen"))
    }
}

/// PostgreSQL array literals bound as one text parameter (`{1,2,3}`, `{"a","b\"c"}`).
enum PostgresArray {
    static func integers(_ values: [Int64]) -> SQLValue {
        .text("{" + values.map(String.init).joined(separator: ",") + "}")
    }

    /// Every element quoted, with `"` and `\` escaped: any text (PostgreSQL text holds no NUL).
    static func texts(_ values: [String]) -> SQLValue {
        var literal = "{"
        for (index, value) in values.enumerated() {
            if index > 0 { literal += "," }
            literal += "\""
            for character in value.unicodeScalars {
                if character == "\"" || character == "\\" { literal += "\\" }
                literal.unicodeScalars.append(character)
            }
            literal += "\""
        }
        return .text(literal + "}")
    }
}
