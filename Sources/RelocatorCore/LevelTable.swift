/// One row of the `level` table: the counts `[minCounts, maxCounts]` that belong to a level.
public struct LevelRange: Equatable, Sendable, Codable {
    public var name: String
    public var minCounts: Int64
    public var maxCounts: Int64

    public init(name: String, minCounts: Int64, maxCounts: Int64) {
        self.name = name
        self.minCounts = minCounts
        self.maxCounts = maxCounts
    }

    /// The three levels `relocator levels --seed-default` writes into an empty table.
    public static let defaults: [LevelRange] = [
        LevelRange(name: "bronze", minCounts: 0, maxCounts: 999),
        LevelRange(name: "silver", minCounts: 1000, maxCounts: 9999),
        LevelRange(name: "gold", minCounts: 10000, maxCounts: 99999),
    ]
}

/// The level a view count belongs to, by the original system's rule.
public struct LevelTable: Equatable, Sendable {
    public let ranges: [LevelRange]

    public init(_ ranges: [LevelRange]) {
        self.ranges = ranges.sorted { ($0.minCounts, $0.name) < ($1.minCounts, $1.name) }
    }

    public struct Choice: Equatable, Sendable {
        public var level: String
        /// Set when the count is above every `max_counts`: the top level's new `max_counts`.
        public var raiseMaxCounts: Int64?

        public init(level: String, raiseMaxCounts: Int64?) {
            self.level = level
            self.raiseMaxCounts = raiseMaxCounts
        }
    }

    /// The level whose `[min_counts, max_counts]` holds `count` (the one with the highest
    /// `min_counts` where ranges overlap). A count above the largest `max_counts` belongs to that
    /// level and raises its `max_counts` to the count. Nil when no level holds it (a gap, or a
    /// count below every `min_counts`).
    public func choose(count: Int64) -> Choice? {
        if let holder = ranges.last(where: { $0.minCounts <= count && count <= $0.maxCounts }) {
            return Choice(level: holder.name, raiseMaxCounts: nil)
        }
        guard let top = ranges.max(by: { ($0.maxCounts, $0.minCounts) < ($1.maxCounts, $1.minCounts) }),
              count > top.maxCounts, count >= top.minCounts
        else { return nil }
        return Choice(level: top.name, raiseMaxCounts: count)
    }
}
