import RelocatorCore

/// Reads and seeds the original `level` table.
public struct LevelStore {
    public let database: any SQLDatabase

    public init(database: any SQLDatabase) {
        self.database = database
    }

    public func levels() throws -> [LevelRange] {
        try database.query("SELECT content_level, min_counts, max_counts FROM level ORDER BY min_counts").map {
            LevelRange(name: try $0.decode("content_level"), minCounts: try $0.decode("min_counts"), maxCounts: try $0.decode("max_counts"))
        }
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
}
