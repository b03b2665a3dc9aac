import RelocatorCore

/// What `relocator plan` reads of many contents at once: one query per thousand contents (or one
/// in all) instead of one per content.
extension ContentStore {
    /// The bytes of each content's last recorded move (its newest `relocations` row), for the
    /// contents that have one; one query per 1,000 cids.
    public func lastMovedBytes(cids: [Int64]) throws -> [Int64: Int64] {
        var found: [Int64: Int64] = [:]
        try forChunks(of: Array(Set(cids)).sorted(), size: 1000) { chunk in
            let marks = SQLDialect.marks(chunk.count)
            let rows = try database.query(SQLQuery(unsafeSQL: """
                SELECT r.cid, r.bytes FROM relocations r
                JOIN (SELECT MAX(id) AS id FROM relocations WHERE cid IN (\(marks)) GROUP BY cid) newest ON r.id = newest.id
                """, binds: chunk.map { .int($0) }))
            for row in rows {
                let cid: Int64 = try row.decode("cid")
                found[cid] = try row.decode("bytes")
            }
        }
        return found
    }

    /// How many contents each level holds (by `content_level`; levels with none are absent).
    public func countsByLevel() throws -> [String: Int64] {
        var counts: [String: Int64] = [:]
        for row in try database.query("SELECT content_level, COUNT(*) AS n FROM contents GROUP BY content_level") {
            let level: String = try row.decode("content_level")
            counts[level] = try row.decode("n")
        }
        return counts
    }
}
