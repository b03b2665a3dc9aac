import RelocatorCore
import Synchronization

/// The level table, kept in the process: read again from SQL when older than `maxAge` (so a level
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

    public func invalidate() { state.withLock { $0 = nil } }
}
