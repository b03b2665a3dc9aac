import RelocatorCore

/// The original `level` table and the `level_policy` table.
public struct LevelStore {
    public let database: any SQLDatabase

    public init(database: any SQLDatabase) {
        self.database = database
    }

    public func levels() throws -> [LevelRange] {
        try database.query("SELECT content_level, min_counts, max_counts FROM level ORDER BY min_counts").map(Self.range)
    }

    private static func range(_ row: SQLRow) throws -> LevelRange {
        LevelRange(name: try row.decode("content_level"), minCounts: try row.decode("min_counts"), maxCounts: try row.decode("max_counts"))
    }


    /// Writes `ranges` into an empty `level` table, in one transaction. Refuses a table that
    /// already has rows: an operator's own levels are never overwritten.
    public func seed(_ ranges: [LevelRange]) throws {
        try database.transaction {
            let existing = try database.query("SELECT COUNT(*) AS n FROM level")[0].decode("n", as: Int.self)
            guard existing == 0 else {
                throw SQLError(code: .other, location: database.location,
                               message: "the level table already has \(existing) rows; not seeding over them")
            }
            for range in ranges {
                try database.execute("""
                    INSERT INTO level (content_level, min_counts, max_counts)
                    VALUES (\(range.name), \(range.minCounts), \(range.maxCounts))
                    """)
            }
        }
    }

    /// Sets one level's `[min_counts, max_counts]`, or adds the level, in a transaction that
    /// holds the table's rows: applied only when the table that results is sound
    /// (`LevelTable.validate`), or when `force` is set. Refused edits change nothing and throw
    /// `.invalidLevelTable` listing the problems. A new level whose name another has in other
    /// case is refused, forced or not.
    @discardableResult
    public func setRange(level: String, min: Int64, max: Int64, force: Bool = false) throws -> LevelRangeEdit {
        guard LevelDirectories.isValidName(level) else {
            throw SQLError(code: .invalidLevelTable, location: database.location,
                           message: "level name '\(level.prefix(80))': use letters, digits, '_' and '-' (at most 64)")
        }
        return try database.transaction {
            let current = try database.query(SQLQuery(unsafeSQL: "SELECT content_level, min_counts, max_counts FROM level ORDER BY content_level\(database.dialect.forUpdate)"))
                .map(Self.range)
            let range = LevelRange(name: level, minCounts: min, maxCounts: max)
            let problems = LevelTable.validate(LevelTable.applying(range, to: current))
            if !problems.isEmpty && !force {
                let shown = problems.map(\.description).joined(separator: "; ")
                throw SQLError(code: .invalidLevelTable, location: database.location,
                               message: "level '\(level)' \(min)–\(max) would leave the level table with \(problems.count == 1 ? "a problem" : "\(problems.count) problems"): \(shown); nothing changed (--force applies it anyway)")
            }
            let previous = current.first { $0.name == level }
            // A name another level has in other case: a look-alike level on PostgreSQL and SQLite
            // (its own queue, directory and keys), the same row on MariaDB, whose columns ignore
            // case. Refused on every backend, forced or not.
            if previous == nil, let twin = current.first(where: { $0.name.lowercased() == level.lowercased() }) {
                throw SQLError(code: .invalidLevelTable, location: database.location,
                               message: "level '\(level)' differs from the level '\(twin.name)' only in case; use '\(twin.name)', or a name of its own; nothing changed")
            }
            if previous == nil {
                try database.execute("INSERT INTO level (content_level, min_counts, max_counts) VALUES (\(level), \(min), \(max))")
            } else {
                try database.execute("UPDATE level SET min_counts = \(min), max_counts = \(max) WHERE content_level = \(level)")
            }
            return LevelRangeEdit(previous: previous, range: range, problems: problems)
        }
    }

    /// The original rule: a count above the top level's `max_counts` raises it to the count. Only
    /// ever raises. Says whether it changed the row and what the row held before. Runs its own
    /// transaction (not inside another).
    @discardableResult
    public func raiseMaxCounts(level: String, to count: Int64) throws -> MaxCountsRaise {
        try database.transaction {
            let rows = try database.query("SELECT max_counts FROM level WHERE content_level = \(level)\(unsafeSQL: database.dialect.forUpdate)")
            guard let previous = try rows.first?.decode("max_counts", as: Int64.self) else {
                return MaxCountsRaise(level: level, changed: false, previous: nil)
            }
            guard previous < count else { return MaxCountsRaise(level: level, changed: false, previous: previous) }
            try database.execute("UPDATE level SET max_counts = \(count) WHERE content_level = \(level) AND max_counts < \(count)")
            return MaxCountsRaise(level: level, changed: true, previous: previous)
        }
    }

    // MARK: - Policies

    private static let policyColumns = "content_level, high_water, low_water, min_residency, hysteresis, max_moves, bandwidth, priority"

    /// Every level's policy, by level name.
    public func policies() throws -> [String: LevelPolicy] {
        var result: [String: LevelPolicy] = [:]
        for row in try database.query("SELECT \(unsafeSQL: Self.policyColumns) FROM level_policy") {
            result[try row.decode("content_level")] = try Self.policy(row)
        }
        return result
    }

    private static func policy(_ row: SQLRow) throws -> LevelPolicy {
        LevelPolicy(highWater: try row.decodeIfPresent("high_water"), lowWater: try row.decodeIfPresent("low_water"),
                    minResidency: try row.decodeIfPresent("min_residency"), hysteresis: try row.decodeIfPresent("hysteresis"),
                    maxMoves: try row.decodeIfPresent("max_moves"), bandwidth: try row.decodeIfPresent("bandwidth"),
                    priority: try row.decodeIfPresent("priority"))
    }

    /// Changes some settings of a level's policy (creating its row), in a transaction; the others
    /// keep their values, `.clear` sets one back to NULL. The level must be in the level table, and
    /// the policy that results must be sound (`LevelPolicy.problems`), else nothing changes and
    /// `.invalidPolicy` says why. Returns the policy as stored.
    @discardableResult
    public func setPolicy(level: String, _ edit: LevelPolicy.Edit) throws -> LevelPolicy {
        try database.transaction {
            guard try !database.query("SELECT content_level FROM level WHERE content_level = \(level)").isEmpty else {
                throw SQLError(code: .invalidPolicy, location: database.location,
                               message: "level '\(level.prefix(80))' is not in the level table")
            }
            let existing = try database.query("SELECT \(unsafeSQL: Self.policyColumns) FROM level_policy WHERE content_level = \(level)\(unsafeSQL: database.dialect.forUpdate)")
                .first.map(Self.policy)
            let policy = edit.applied(to: existing ?? LevelPolicy())
            let problems = policy.problems(level: level)
            guard problems.isEmpty else {
                throw SQLError(code: .invalidPolicy, location: database.location,
                               message: problems.joined(separator: "; ") + "; nothing changed")
            }
            let d = database.dialect
            try database.execute("""
                INSERT INTO level_policy (\(unsafeSQL: Self.policyColumns))
                VALUES (\(level), \(policy.highWater), \(policy.lowWater), \(policy.minResidency), \(policy.hysteresis),
                        \(policy.maxMoves), \(policy.bandwidth), \(policy.priority))
                \(unsafeSQL: d.upsertClause(conflict: ["content_level"], update: ["high_water", "low_water", "min_residency", "hysteresis", "max_moves", "bandwidth", "priority"]))
                """)
            return policy
        }
    }
}
