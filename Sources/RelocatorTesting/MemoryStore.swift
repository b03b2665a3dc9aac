import Foundation
import RelocatorCore

/// The contents, level, level policy and relocations tables in memory, for tests of the
/// application and the HTTP layer without a database: the rules of the SQL store (a content takes
/// the level of its newest committed job, a filename belongs to one content, a level table edit is
/// refused when it leaves the table unsound) kept as `SQLContentStore` keeps them. Not the proof
/// that the SQL store works: that is SQLStoreTests' job, on every dialect.
public final class MemoryStore: ContentStoring, @unchecked Sendable {
    private let lock = NSLock()
    private var rows: [Int64: Content] = [:]
    private var moves: [Relocation] = []
    private var ranges: [String: LevelRange] = [:]
    private var levelPolicies: [String: LevelPolicy] = [:]
    /// While set, every call throws as a lost connection would.
    private var failing = false
    /// What `schemaProblem` says (a test of a database whose schema is behind the binary's).
    private var schemaBehind: String?
    /// This store's clock (ms since 1970) for `update_time` and `moved_at`.
    private let clock: @Sendable () -> Int64

    public init(levels: [LevelRange] = LevelRange.defaults, clock: @escaping @Sendable () -> Int64 = WallClock.milliseconds) {
        self.clock = clock
        for range in levels { ranges[range.name] = range }
    }

    /// What a memory store refuses, in the SQL store's words.
    public struct Refused: Error, CustomStringConvertible, Equatable {
        public var description: String
    }

    /// The store out of reach (a test of a database outage).
    public struct Unavailable: Error, CustomStringConvertible, OutageDescribing, TransientFailure {
        public var description: String { "the memory store is unavailable (test)" }
        public var outage: String? { "the database is unreachable; try again later" }
        public var isTransient: Bool { true }
    }

    public func setUnavailable(_ unavailable: Bool) { locked { failing = unavailable } }

    /// While set, `schemaProblem` answers `problem`, as the SQL store does for a schema behind the
    /// binary's migrations (the words themselves are proved on a real database).
    public func setSchemaProblem(_ problem: String?) { locked { schemaBehind = problem } }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    private func available<T>(_ body: () throws -> T) throws -> T {
        try locked {
            if failing { throw Unavailable() }
            return try body()
        }
    }

    public var location: String { "memory" }

    public func content(cid: Int64) throws -> Content? { try available { rows[cid] } }
    public func content(filename: String) throws -> Content? { try available { rows.values.first { FilenameKey.same($0.filename, filename) } } }
    public func contents(cids: [Int64]) throws -> [Int64: Content] {
        try available { Dictionary(cids.compactMap { cid in rows[cid].map { (cid, $0) } }, uniquingKeysWith: { first, _ in first }) }
    }
    public func contents(limit: Int, offset: Int, level: String?) throws -> [Content] {
        try available {
            let all = rows.values.filter { level == nil || $0.level == level }.sorted { $0.cid < $1.cid }
            return Array(all.dropFirst(max(0, offset)).prefix(max(0, limit)))
        }
    }

    public func put(_ contents: [Content]) throws -> Int {
        try available {
            var byCid: [Int64: Content] = [:]
            for content in contents { byCid[content.cid] = content }
            var owners: [FilenameKey: Int64] = [:]
            for row in rows.values where byCid[row.cid] == nil { owners[FilenameKey(row.filename)] = row.cid }
            for content in byCid.values.sorted(by: { $0.cid < $1.cid }) {
                if let other = owners[FilenameKey(content.filename)] {
                    throw Refused(description: "filename '\(content.filename)' already belongs to cid \(other)")
                }
                owners[FilenameKey(content.filename)] = content.cid
            }
            for content in byCid.values {
                var row = content
                if row.updateTime == nil { row.updateTime = rows[content.cid]?.updateTime }
                // An existing content keeps its level (only a commit changes it), as in the SQL store.
                if let level = rows[content.cid]?.level { row.level = level }
                rows[content.cid] = row
            }
            return contents.count
        }
    }

    public func remove(cid: Int64) throws -> Bool { try available { rows.removeValue(forKey: cid) != nil } }

    public func commit(_ entries: [CommitEntry]) throws {
        try available {
            let now = TimeText.rfc3339(milliseconds: clock())
            var latest: [Int64: CommitEntry] = [:]
            for entry in entries where (latest[entry.cid]?.gen ?? Int64.min) <= entry.gen { latest[entry.cid] = entry }
            // Levels first: a level changes only for an entry newer than every recorded job.
            for entry in latest.values {
                let recorded = moves.filter { $0.cid == entry.cid }.compactMap(\.gen).max() ?? -1
                if entry.gen > recorded, var row = rows[entry.cid] {
                    row.level = entry.to
                    row.updateTime = now
                    rows[entry.cid] = row
                }
            }
            for entry in entries where !moves.contains(where: { $0.jobID == entry.jobID }) {
                moves.append(Relocation(jobID: entry.jobID, cid: entry.cid, from: entry.from, to: entry.to, bytes: entry.bytes,
                                        checksum: entry.checksum, worker: entry.worker, attempts: entry.attempts, movedAt: now, gen: entry.gen))
            }
        }
    }

    public func relocations(cid: Int64?, limit: Int) throws -> [Relocation] {
        try available { Array(moves.filter { cid == nil || $0.cid == cid }.reversed().prefix(max(0, limit))) }
    }

    public func history(cid: Int64) throws -> [Relocation] { try available { moves.filter { $0.cid == cid } } }

    /// Ids are places in the list, from 1, as the SQL table's ids grow.
    public func relocationsPage(cid: Int64?, before: Int64?, limit: Int) throws -> (rows: [Relocation], total: Int, next: Int64?) {
        try available {
            let matching = moves.enumerated().filter { cid == nil || $0.element.cid == cid }.map { (id: Int64($0.offset + 1), row: $0.element) }
            let older = matching.reversed().filter { before == nil || $0.id < before! }
            let page = Array(older.prefix(max(1, limit)))
            return (page.map(\.row), matching.count, older.count > page.count ? page.last?.id : nil)
        }
    }

    public func recentMoves(withinSeconds seconds: Int, newest: Int) throws -> (counts: [LevelMoves], complete: Bool) {
        try available {
            let since = TimeText.rfc3339(milliseconds: clock().saturatingSubtract(Int64(seconds) * 1000))
            var counts: [String: LevelMoves] = [:]
            let recent = moves.suffix(max(1, newest)).filter { $0.movedAt >= since }
            for move in recent {
                counts["\(move.from)\n\(move.to)", default: LevelMoves(from: move.from, to: move.to, moves: 0, bytes: 0)].moves += 1
                counts["\(move.from)\n\(move.to)"]!.bytes = counts["\(move.from)\n\(move.to)"]!.bytes.saturatingAdd(move.bytes)
            }
            return (counts.values.sorted { ($0.from, $0.to) < ($1.from, $1.to) }, recent.count < max(1, newest))
        }
    }

    /// In the table's order (by `min_counts`), as the SQL store answers.
    public func levels() throws -> [LevelRange] { try available { LevelTable(Array(ranges.values)).ranges } }

    public func seed(_ seeded: [LevelRange]) throws {
        try available {
            guard ranges.isEmpty else { throw Refused(description: "the level table already has \(ranges.count) rows; not seeding over them") }
            for range in seeded { ranges[range.name] = range }
        }
    }

    public func setRange(level: String, min: Int64, max: Int64, force: Bool) throws -> LevelRangeEdit {
        try available {
            let range = LevelRange(name: level, minCounts: min, maxCounts: max)
            let current = ranges.values.sorted { $0.name < $1.name }
            let problems = LevelTable.validate(LevelTable.applying(range, to: current))
            if !problems.isEmpty && !force {
                throw Refused(description: "level '\(level)' \(min)–\(max) would leave the level table with problems: "
                              + problems.map(\.description).joined(separator: "; ") + "; nothing changed (--force applies it anyway)")
            }
            let previous = ranges[level]
            ranges[level] = range
            return LevelRangeEdit(previous: previous, range: range, problems: problems)
        }
    }

    public func raiseMaxCounts(level: String, to count: Int64) throws -> MaxCountsRaise {
        try available {
            guard let range = ranges[level] else { return MaxCountsRaise(level: level, changed: false, previous: nil) }
            guard range.maxCounts < count else { return MaxCountsRaise(level: level, changed: false, previous: range.maxCounts) }
            ranges[level] = LevelRange(name: level, minCounts: range.minCounts, maxCounts: count)
            return MaxCountsRaise(level: level, changed: true, previous: range.maxCounts)
        }
    }

    public func policies() throws -> [String: LevelPolicy] { try available { levelPolicies } }

    public func setPolicy(level: String, _ edit: LevelPolicy.Edit) throws -> LevelPolicy {
        try available {
            guard ranges[level] != nil else { throw Refused(description: "level '\(level.prefix(80))' is not in the level table") }
            let policy = edit.applied(to: levelPolicies[level] ?? LevelPolicy())
            let problems = policy.problems(level: level)
            guard problems.isEmpty else { throw Refused(description: problems.joined(separator: "; ") + "; nothing changed") }
            levelPolicies[level] = policy
            return policy
        }
    }

    public func schemaProblem() throws -> String? { try available { schemaBehind } }

    public func close() {}
}

/// Memory stores for the application: every call runs on the caller's task (nothing blocks).
public final class MemoryStoreGateway: StoreGateway {
    public let store: MemoryStore

    public init(_ store: MemoryStore = MemoryStore()) {
        self.store = store
    }

    public func withStore<T: Sendable>(_ body: @escaping @Sendable (any ContentStoring) throws -> T) async throws -> T { try body(store) }
    public func open() throws -> any ContentStoring { store }
    public var location: String { "memory" }
    public func close() {}
}
