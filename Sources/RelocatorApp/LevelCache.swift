import RelocatorCore
import Synchronization

/// The level table, kept in the process: read again from the store when older than `maxAge` (so a level
/// added by an operator shows up within that time), and updated at once when this process raises a
/// `max_counts` itself.
public final class LevelCache: Sendable {
    private let maxAge: Duration
    private let state = Mutex<(table: LevelTable, loaded: ContinuousClock.Instant)?>(nil)

    public init(maxAge: Duration = .seconds(5)) {
        self.maxAge = maxAge
    }

    /// The table; when reloading fails (the database is down) a table loaded before is used.
    public func table(load: () async throws -> [LevelRange]) async throws -> LevelTable {
        let cached = state.withLock { $0 }
        if let cached, ContinuousClock.now - cached.loaded < maxAge { return cached.table }
        let ranges: [LevelRange]
        do {
            ranges = try await load()
        } catch {
            if let cached { return cached.table }
            throw error
        }
        let table = LevelTable(ranges)
        state.withLock { $0 = (table, ContinuousClock.now) }
        return table
    }

    /// Records a raised `max_counts` without waiting for the next load.
    public func raise(level: String, to count: Int64) {
        state.withLock { cached in
            guard let current = cached else { return }
            let ranges = current.table.ranges.map { range in
                var range = range
                if range.name == level && range.maxCounts < count { range.maxCounts = count }
                return range
            }
            cached = (LevelTable(ranges), current.loaded)
        }
    }

    public func invalidate() {
        state.withLock { $0 = nil }
        policyState.withLock { $0 = nil }
    }

    private let policyState = Mutex<(policies: [String: LevelPolicy], loaded: ContinuousClock.Instant)?>(nil)

    /// The level policies (`level_policy`), kept as long as the table; the last ones when the
    /// database is down.
    public func policies(load: () async throws -> [String: LevelPolicy]) async throws -> [String: LevelPolicy] {
        let cached = policyState.withLock { $0 }
        if let cached, ContinuousClock.now - cached.loaded < maxAge { return cached.policies }
        let policies: [String: LevelPolicy]
        do {
            policies = try await load()
        } catch {
            if let cached { return cached.policies }
            throw error
        }
        policyState.withLock { $0 = (policies, ContinuousClock.now) }
        return policies
    }
}

/// Contents (filename, level) seen lately, so that a popular content's counts do not each cost a
/// database query. An entry is used for at most `maxAge`, and carries when it was read: the enqueue
/// script prefers the level of a job committed after that moment (a move by this system keeps its
/// job readable for a day), so a cached level never sends a move from the wrong place.
public final class ContentCache: Sendable {
    /// A content as read, when, and its filename checked once per read (not on every count).
    public struct Entry: Sendable {
        public var content: Content
        /// When it was read from the database (ms since 1970).
        public var readAt: Int64
        /// The queue's clock then was at least this (ms; `QueueClockEstimate`), when known.
        public var readBound: Int64?
        /// `Filename(content.filename)`: the checked name, or why it cannot be moved safely.
        public var filename: Result<Filename, any Error>
        /// The level on whose directory the name was last found to pass through no symbolic link
        /// (`App.checkPath`), since this read: a later count on that level does not look again.
        public var pathCheckedOn: String?

        public init(content: Content, readAt: Int64, readBound: Int64? = nil) {
            self.content = content
            self.readAt = readAt
            self.readBound = readBound
            do {
                filename = .success(try Filename(content.filename))
            } catch {
                filename = .failure(error)
            }
        }
    }

    private let maxAge: Duration
    private let capacity: Int
    private let entries = Mutex<[Int64: (entry: Entry, loaded: ContinuousClock.Instant)]>([:])

    /// `capacity`: 48,000 entries keep the dictionary within 65,536 buckets (a Dictionary grows at
    /// three quarters full, doubling): about 15 MiB full, so that the API stays under 80 MiB
    /// (100,000 entries, in 262,144 buckets, took it to 106 MiB).
    public init(maxAge: Duration = .seconds(30), capacity: Int = 48_000) {
        self.maxAge = maxAge
        self.capacity = capacity
    }

    /// The content and when it was read from the database (ms since 1970).
    public func content(_ cid: Int64) -> (content: Content, readAt: Int64)? {
        entry(cid).map { ($0.content, $0.readAt) }
    }

    /// The content's entry while it is younger than `maxAge`.
    public func entry(_ cid: Int64) -> Entry? {
        let now = ContinuousClock.now
        return entries.withLock { entries in
            guard let cached = entries[cid] else { return nil }
            if now - cached.loaded >= maxAge {
                entries[cid] = nil
                return nil
            }
            return cached.entry
        }
    }

    public func store(_ content: Content, readAt: Int64, readBound: Int64? = nil) {
        store(Entry(content: content, readAt: readAt, readBound: readBound))
    }

    public func store(_ entry: Entry) {
        let now = ContinuousClock.now
        entries.withLock { entries in
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[entry.content.cid] = (entry, now)
        }
    }

    /// Records that the content's name, as read, passes through no symbolic link on `level` (its
    /// entry, if it is still the same read).
    public func markPathChecked(_ cid: Int64, filename: String, readAt: Int64, on level: String) {
        entries.withLock { entries in
            guard var cached = entries[cid], FilenameKey.same(cached.entry.content.filename, filename), cached.entry.readAt == readAt else { return }
            cached.entry.pathCheckedOn = level
            entries[cid] = cached
        }
    }

    /// Forgets everything (Redis failed over: what it knew of recent moves may be lost with it).
    public func clear() { entries.withLock { $0.removeAll(keepingCapacity: true) } }
}
