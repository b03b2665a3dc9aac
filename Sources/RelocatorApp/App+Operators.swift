import Foundation
import RelocatorCore

/// The operators' use cases: the level table and its policies, the contents table, the committed
/// moves and the dead letters, as `relocator levels`, `contents`, `relocations` and `dlq` use them.
extension App {
    // MARK: - The level table

    /// A level's count range and its policy (unset settings are nil).
    public struct LevelSetting: Sendable, Equatable {
        public var range: LevelRange
        public var policy: LevelPolicy

        public init(range: LevelRange, policy: LevelPolicy) {
            self.range = range
            self.policy = policy
        }
    }

    /// What `setLevel` changed: the range (with the row before it), the policy after the edit.
    public struct LevelChange: Sendable, Equatable {
        public var range: LevelRangeEdit?
        public var policy: LevelPolicy?
    }

    /// The level table with each level's policy, read now; with `seed`, written into an empty
    /// table first (a table with rows refuses it).
    public func levelSettings(seeding seed: [LevelRange]? = nil) async throws -> [LevelSetting] {
        let settings = try await store.withStore { store -> [LevelSetting] in
            if let seed { try store.seed(seed) }
            let policies = try store.policies()
            return try store.levels().map { LevelSetting(range: $0, policy: policies[$0.name] ?? LevelPolicy()) }
        }
        if seed != nil {
            levels.invalidate()
            recent.clear()
        }
        return settings
    }

    /// The names in the level table, in its order, read now.
    public func levelNames() async throws -> [String] {
        try await store.withStore { try $0.levels().map(\.name) }
    }

    /// Sets a level's count range (`min`, `max`: nil keeps the level's own) and edits its policy.
    /// The policy is checked before the range is written, so a refused policy changes nothing; a
    /// new level needs both counts.
    public func setLevel(_ level: String, min: Int64?, max: Int64?, force: Bool = false, edit: LevelPolicy.Edit = LevelPolicy.Edit()) async throws -> LevelChange {
        let changesPolicy = edit != LevelPolicy.Edit()
        let change = try await store.withStore { store -> LevelChange in
            let table = try store.levels()
            let current = table.first { $0.name == level }
            if changesPolicy {
                let policy = edit.applied(to: try store.policies()[level] ?? LevelPolicy())
                let problems = policy.problems(level: level)
                guard problems.isEmpty else { throw AppError.badRequest(problems.joined(separator: "; ") + "; nothing changed") }
                if current == nil && (min == nil || max == nil) {
                    throw AppError(.notFound, "unknown_level",
                                   "level '\(level)' is not in the level table (\(table.map(\.name).joined(separator: ", "))); give --min and --max to add it")
                }
            }
            var change = LevelChange()
            if min != nil || max != nil {
                guard let low = min ?? current?.minCounts, let high = max ?? current?.maxCounts else {
                    throw AppError.badRequest("level '\(level)' is new: give both --min and --max")
                }
                // (The counts the level will have: one kept from before is checked too.)
                for (name, value) in [("min", low), ("max", high)] {
                    if !CountBound.range.contains(value) {
                        throw AppError.badRequest(CountBound.rangeMessage(name, minimum: 0, maximum: CountBound.max, got: String(value), source: "option") + "; nothing changed")
                    }
                }
                change.range = try store.setRange(level: level, min: low, max: high, force: force)
            }
            if changesPolicy { change.policy = try store.setPolicy(level: level, edit) }
            return change
        }
        levels.invalidate()
        // A plan read before the change may place contents by the old ranges or policies.
        recent.clear()
        return change
    }

    /// Records levels as initialised (their directories hold `.relocator/`): workers and reconcile
    /// use them from then on.
    public func recordLevelsSeen(_ names: [String]) async throws {
        _ = try await queue.withSession { try $0.control(.levelsSeen(adding: names)) }
    }

    /// `level 'platinum' is not in the level table (bronze, silver, gold)`, or that the table is
    /// empty and how to fill it.
    public static func unknownLevel(_ level: String, in names: [String]) -> AppError {
        var error = AppError.unknownLevel(level)
        error.message += names.isEmpty ? "; the level table is empty: run `relocator levels --seed-default` or `relocator levels set`"
            : " (\(names.joined(separator: ", ")))"
        return error
    }

    // MARK: - Contents

    /// A content as an operator gives it: a positive cid, a filename that stays inside its level
    /// directory, a level of `levels`; otherwise what is wrong with it.
    public static func checkedContent(cid: Int64, filename: String, level: String, levels: [String]) -> Result<Content, AppError> {
        guard cid > 0 else { return .failure(.badRequest("cid \(cid) is not a positive whole number")) }
        do {
            _ = try Filename(filename)
        } catch {
            return .failure(.invalidFilename("filename '\(filename.prefix(80))': \(error)"))
        }
        guard levels.contains(level) else { return .failure(unknownLevel(level, in: levels)) }
        return .success(Content(cid: cid, filename: filename, level: level))
    }

    /// Contents in cid order, of one level of the level table when `level` is given.
    public func contents(limit: Int, offset: Int, level: String?) async throws -> [Content] {
        try await store.withStore { store in
            if let level {
                let names = try store.levels().map(\.name)
                guard names.contains(level) else { throw App.unknownLevel(level, in: names) }
            }
            return try store.contents(limit: limit, offset: offset, level: level)
        }
    }

    /// What `putContent` did to a content's row.
    public enum ContentChange: Sendable, Equatable {
        case added
        case unchanged
        /// The row before.
        case changed(from: Content)
    }

    /// Adds a content, or changes its filename and level, after checking it (`checkedContent`). A
    /// changed level of an existing content is a commit (`recordOperatorLevels`): refused while the
    /// content has a job in flight, and ordered among the moves.
    public func putContent(cid: Int64, filename: String, level: String) async throws -> ContentChange {
        let (before, names) = try await store.withStore { store in (try store.content(cid: cid), try store.levels().map(\.name)) }
        let content = try App.checkedContent(cid: cid, filename: filename, level: level, levels: names).get()
        _ = try await putContents([content], by: "relocator contents add")
        switch before {
        case nil: return .added
        case let old? where FilenameKey.same(old.filename, filename) && old.level == level: return .unchanged
        case let old?: return .changed(from: old)
        }
    }

    /// Adds or changes contents already checked (`checkedContent`); a filename that belongs to
    /// another content refuses them all. The level of an existing content that changes is not
    /// written with the row but recorded after it, as a commit that `by` made
    /// (`recordOperatorLevels`): while one of them has a job in flight nothing is written. A
    /// content whose filename changes is held meanwhile (leased: no worker claims a job of it) —
    /// refused while it has a job in flight, whose move would take the file of the name it had —
    /// and a count read before is told to read it again. Returns how many rows were given.
    public func putContents(_ rows: [Content], by who: String) async throws -> Int {
        var latest: [Int64: Content] = [:]
        for row in rows { latest[row.cid] = row }  // the last row of a cid wins, as in the store
        let cids = Array(latest.keys)
        let existing = try await store.withStore { try $0.contents(cids: cids) }
        let moved = latest.values.compactMap { row -> (old: Content, level: String)? in
            guard let old = existing[row.cid], old.level != row.level else { return nil }
            return (old, row.level)
        }.sorted { $0.old.cid < $1.old.cid }
        let renamed = latest.values.filter { row in existing[row.cid].map { !FilenameKey.same($0.filename, row.filename) } ?? false }
            .map(\.cid).sorted()
        let newNames = latest.mapValues(\.filename)
        try await refuseInFlight(moved.map(\.old.cid))
        let holder = "rename-\(UUID().uuidString)"
        try await hold(renamed, holder: holder, for: Self.renameLease(rows: latest.count, renamed: renamed.count))
        let count: Int
        var written = false, named = false
        do {
            // The rows keep the levels they have (the store writes a level only with a new row, never
            // one read here that a move may have changed since); a changed level is a commit of its own.
            count = try await store.withStore { try $0.put(rows) }
            written = true
            contents.clear()
            if !renamed.isEmpty {
                _ = try await queue.withSession(replicated: true) { session in
                    // (A job a count made while the content was held takes the new name.)
                    try session.controls(renamed.map { .levelChanged(cid: $0, filename: newNames[$0], holder: holder) })
                }
            }
            named = true
            try await recordOperatorLevels(moved, by: who)
        } catch {
            // A write that failed for a reason that may have come after its COMMIT was sent (a
            // session lost or given up while committing) may land at any time, even after a read
            // that still finds the old name (the COMMIT waiting in a stalled server): taken as written.
            if !written, (error as? any TransientFailure)?.isTransient == true { written = true }
            // Written (or perhaps) but not told to the queue: a job a count made meanwhile may still carry the
            // old name, so the contents stay held until their leases end (no claim by that name).
            if written && !named && !renamed.isEmpty {
                logger.warning("renamed contents stay held until their leases end: the queue was not told the new names",
                               metadata: ["error": "\(error)", "contents": "\(renamed.count)"])
            } else {
                await unlease(renamed, holder: holder)
            }
            throw error
        }
        await unlease(renamed, holder: holder)
        return count
    }

    /// Records this process's half-life as the one the counts are kept with, if none is; throws
    /// `HalfLifeChange` when another one is (`serve` refuses to start).
    public func agreeOnHalfLife() async throws {
        let halfLife = self.halfLife
        _ = try await queue.withSession { try $0.control(.agreeOnHalfLife(halfLife)) }
    }

    /// How long a rename holds its contents: a minute, a millisecond more for each row written
    /// with them, and 10 ms for each content renamed (its lease and its new name go a thousand to
    /// a round trip: the first lease must outlast them all, and the write). One lapsed
    /// would let a worker claim, by the old name, a job a count made meanwhile. A process that dies
    /// holding them leaves those contents' jobs unclaimed for as long.
    static func renameLease(rows: Int, renamed: Int) -> Duration {
        .seconds(60) + .milliseconds(min(max(rows, 0), 100_000_000)) + .milliseconds(10 * min(max(renamed, 0), 10_000_000))
    }

    /// Leases `cids` for `holder` on one session, all or none: one with a job in flight refuses the change.
    func hold(_ cids: [Int64], holder: String, for ttl: Duration) async throws {
        guard !cids.isEmpty else { return }
        let answers = try await queue.withSession { session in try session.controls(cids.map { .lease(cid: $0, token: holder, ttl: ttl) }) }
        let held = zip(cids, answers).filter { $0.1 == .flag(true) }.map(\.0)
        guard let cid = zip(cids, answers).first(where: { $0.1 != .flag(true) })?.0 else { return }
        await unlease(held, holder: holder)
        throw AppError.conflict("job_in_flight", "cid \(cid) has a job in flight (relocator why \(cid) shows it), or an earlier change "
                                + "still holds it (a rename whose write may have landed holds it a minute or more); "
                                + "its filename is not changed under its move, nothing changed")
    }

    /// Refuses, before anything changes, a change of level of contents that have a job in flight.
    func refuseInFlight(_ cids: [Int64]) async throws {
        guard !cids.isEmpty else { return }
        let busy = try await queue.withSession { session in
            try session.states(cids: cids).filter { $0.value.status != .committed && $0.value.status != .dead }.keys.sorted()
        }
        guard busy.isEmpty else {
            throw AppError.conflict("job_in_flight", "cid \(busy.map(String.init).joined(separator: ", ")) \(busy.count == 1 ? "has" : "have") a job in flight "
                                    + "(relocator why \(busy[0]) shows it); its level is its move's to change, nothing changed")
        }
    }

    /// Records operators' changes of existing contents' levels as `Commit.recordLevel` does for
    /// reconcile: a generation from the queue orders each among the moves, a relocation row names
    /// `by`, and a count read before is told to read the content again. A content whose job came
    /// first meanwhile keeps the level its move gives it (the others are recorded).
    func recordOperatorLevels(_ changes: [(old: Content, level: String)], by who: String) async throws {
        guard !changes.isEmpty else { return }
        let gateway = store
        let refused = try await queue.withSession(replicated: true) { session -> [Int64] in
            let own = try gateway.open()
            defer { own.close() }
            return try changes.filter { change in
                try !Commit.recordLevel(cid: change.old.cid, from: change.old.level, to: change.level, by: who, store: own, queue: session)
            }.map(\.old.cid)
        }
        guard refused.isEmpty else {
            throw AppError.conflict("job_in_flight", "cid \(refused.map(String.init).joined(separator: ", ")): a job or a move came first meanwhile; "
                                    + "its level stays as that leaves it (the rows and the other changes were recorded)")
        }
    }

    // MARK: - Committed moves

    /// A page of the committed moves with the filenames of their contents.
    public struct RelocationRows: Sendable, Equatable {
        public var rows: [Relocation]
        /// The filenames of the contents that still exist.
        public var filenames: [Int64: String]
        public var total: Int
        /// The `before` of the next page; nil on the last.
        public var next: Int64?
    }

    /// At most `limit` committed moves older than `before`, newest first (of one content when `cid`
    /// is given), with the filenames of their contents unless `withFilenames` is false. The one
    /// read of the relocations: `relocationsPage` (the API's) pages with it too.
    public func relocationRows(cid: Int64?, before: Int64?, limit: Int, withFilenames: Bool = true) async throws -> RelocationRows {
        guard limit > 0 else { return RelocationRows(rows: [], filenames: [:], total: 0, next: nil) }
        return try await store.withStore { store in
            let page = try store.relocationsPage(cid: cid, before: before, limit: limit)
            let names = withFilenames ? try store.contents(cids: Array(Set(page.rows.map(\.cid)))).mapValues(\.filename) : [:]
            return RelocationRows(rows: page.rows, filenames: names, total: page.total, next: page.next)
        }
    }

    // MARK: - Dead letters

    /// The dead letters, all of them or those of `cids`. A cid asked for that has no dead job makes
    /// the whole selection fail (`no dead job for cid 99, 100; nothing replayed`, with `action`
    /// `replayed` or `purged`), so that nothing is changed.
    public func deadLetters(cids: [Int64]?, action: String) async throws -> [DeadLetter] {
        let dead = try await queue.withSession { try $0.deadLetters() }
        guard let cids else { return dead }
        let missing = DeadLetterSelection.missing(cids, deadIDs: dead.map(\.id))
        guard missing.isEmpty else { throw AppError(.notFound, "no_dead_job", DeadLetterSelection.message(missing: missing, action: action)) }
        let wanted = Set(cids)
        return dead.filter { JobID($0.id).map { wanted.contains($0.cid) } ?? false }
    }
}
