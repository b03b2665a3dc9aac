/// One row of the `level` table: the counts `[minCounts, maxCounts]` that belong to a level.
/// JSON: `{"name": "gold", "min_counts": 10000, "max_counts": 99999}`.
public struct LevelRange: Equatable, Sendable, Codable {
    public var name: String
    public var minCounts: Int64
    public var maxCounts: Int64

    enum CodingKeys: String, CodingKey {
        case name
        case minCounts = "min_counts"
        case maxCounts = "max_counts"
    }

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

extension LevelTable {
    /// Something wrong with a level table, described in one line.
    public enum Problem: Equatable, Sendable, CustomStringConvertible {
        /// A level's `min_counts` or `max_counts` below zero.
        case negative(level: String, column: String, value: Int64)
        /// A level whose `min_counts` is above its `max_counts`: it holds no count.
        case minAboveMax(level: String, min: Int64, max: Int64)
        /// Counts between two consecutive levels that belong to neither.
        case gap(below: String, above: String, from: Int64, to: Int64)
        /// Two levels sharing more than one boundary count.
        case overlap(lower: String, upper: String, from: Int64, to: Int64)
        /// One name on two rows.
        case duplicate(level: String)

        public var description: String {
            switch self {
            case .negative(let level, let column, let value):
                return "level '\(level)': \(column) \(value) is negative"
            case .minAboveMax(let level, let min, let max):
                return "level '\(level)': min_counts \(min) is above max_counts \(max)"
            case .gap(let below, let above, let from, let to):
                let counts = from == to ? "count \(from) belongs" : "counts \(from)–\(to) belong"
                return "\(counts) to no level (between '\(below)' and '\(above)')"
            case .overlap(let lower, let upper, let from, let to):
                return "levels '\(lower)' and '\(upper)' overlap on counts \(from)–\(to) (they may share one boundary count only)"
            case .duplicate(let level):
                return "level '\(level)' appears more than once"
            }
        }
    }

    /// What is wrong with a level table, one problem per line: negative counts, a `min_counts`
    /// above its `max_counts`, a gap between consecutive levels, an overlap beyond a shared
    /// boundary (on a shared boundary count the higher level wins, as `choose` does), a name used
    /// twice. Empty when the table is sound. Counts below the lowest level are not a problem.
    public static func validate(_ ranges: [LevelRange]) -> [Problem] {
        var problems: [Problem] = []
        var seen: Set<String> = []
        for range in ranges {
            if !seen.insert(range.name).inserted, !problems.contains(.duplicate(level: range.name)) {
                problems.append(.duplicate(level: range.name))
            }
            if range.minCounts < 0 { problems.append(.negative(level: range.name, column: "min_counts", value: range.minCounts)) }
            if range.maxCounts < 0 { problems.append(.negative(level: range.name, column: "max_counts", value: range.maxCounts)) }
            if range.minCounts > range.maxCounts {
                problems.append(.minAboveMax(level: range.name, min: range.minCounts, max: range.maxCounts))
            }
        }
        // Consecutive levels, among those that hold counts at all.
        let sorted = ranges.filter { $0.minCounts <= $0.maxCounts }
            .sorted { ($0.minCounts, $0.maxCounts, $0.name) < ($1.minCounts, $1.maxCounts, $1.name) }
        var covered: LevelRange?  // the level reaching highest so far
        for range in sorted {
            defer { if range.maxCounts > covered?.maxCounts ?? Int64.min { covered = range } }
            guard let lower = covered, lower.name != range.name else { continue }  // a duplicate is reported once, above
            if range.minCounts > lower.maxCounts, range.minCounts - 1 > lower.maxCounts {
                problems.append(.gap(below: lower.name, above: range.name, from: lower.maxCounts + 1, to: range.minCounts - 1))
            } else if range.minCounts < lower.maxCounts {
                problems.append(.overlap(lower: lower.name, upper: range.name, from: range.minCounts,
                                         to: Swift.min(lower.maxCounts, range.maxCounts)))
            }
        }
        return problems
    }

    /// The table after setting one level's range (replacing its row, or adding a level).
    public static func applying(_ range: LevelRange, to ranges: [LevelRange]) -> [LevelRange] {
        var result = ranges.filter { $0.name != range.name }
        result.append(range)
        return result.sorted { ($0.minCounts, $0.name) < ($1.minCounts, $1.name) }
    }
}
