#if canImport(Glibc)
import Glibc
#endif

/// Where contents belong: the seed's rule (a count inside a level's `[min_counts, max_counts]`
/// sends the file there) refined by each level's optional policy — hysteresis, minimum residency,
/// capacity watermarks, priorities. Pure: every input is a value, every time is given.
/// With no policy at all every answer is the seed's.
public struct Placement: Equatable, Sendable {
    public let table: LevelTable
    public let policies: [String: LevelPolicy]

    public init(table: LevelTable, policies: [String: LevelPolicy] = [:]) {
        self.table = table
        self.policies = policies
    }

    /// Level names from the top (the highest `min_counts`) down.
    public var rankedLevels: [String] { table.ranges.reversed().map(\.name) }

    /// The level right below `level`, nil for the bottom one.
    public func levelBelow(_ level: String) -> String? {
        let ranked = rankedLevels
        guard let index = ranked.firstIndex(of: level), index + 1 < ranked.count else { return nil }
        return ranked[index + 1]
    }

    /// True when `to` ranks above `from` (a promotion).
    public func isPromotion(from: String, to: String) -> Bool {
        let ranked = rankedLevels
        guard let a = ranked.firstIndex(of: from), let b = ranked.firstIndex(of: to) else { return false }
        return b < a
    }

    public struct Decision: Equatable, Sendable {
        /// The level the content goes to (or stays on).
        public var level: String
        /// Set when the count is above every `max_counts`: the top level's new `max_counts`.
        public var raiseMaxCounts: Int64?
        /// Why the content stays where it is although the seed's rule says otherwise.
        public var heldBy: String?
    }

    /// The level a count sends a content that is on `current` to. Hysteresis: a content leaves its
    /// level downward only once its count falls below that level's `min_counts × (1 − hysteresis)`.
    /// Nil when no level holds the count.
    public func target(count: Int64, current: String?) -> Decision? {
        guard let choice = table.choose(count: count) else { return nil }
        var decision = Decision(level: choice.level, raiseMaxCounts: choice.raiseMaxCounts, heldBy: nil)
        guard let current, current != choice.level, !isPromotion(from: current, to: choice.level),
              let percent = policies[current]?.hysteresis, percent > 0,
              let range = table.ranges.first(where: { $0.name == current }) else { return decision }
        let floor = Double(range.minCounts) * (1 - Double(percent) / 100)
        if Double(count) >= floor {
            decision.level = current
            decision.heldBy = "hysteresis: \(count) is not below \(current)'s \(range.minCounts) − \(percent) % (\(Int64(clamping: floor.rounded(.up))))"
        }
        return decision
    }

    /// When a content that last moved at `lastMoved` (ms) may leave `level` again, or nil when it
    /// may now (no residency set, never moved, or the window has passed).
    public func residencyEnds(level: String, lastMoved: Int64?, now: Int64) -> Int64? {
        guard let seconds = policies[level]?.minResidency else { return nil }
        return Residency.due(residency: seconds.saturatingMultiply(1000), moved: lastMoved, now: now)
    }

    /// A level's disk, as a worker reports it. Its fill is the one `df` shows: used / (used +
    /// available) — the blocks a filesystem reserves for root are neither used nor available to
    /// the workers, so they count in neither (ext4 reserves 5 % by default). Watermarks, room and
    /// every percentage shown are of that capacity, not of the disk's size.
    public struct Usage: Equatable, Sendable {
        /// Bytes in use.
        public var used: Int64
        /// Bytes an unprivileged writer may still use (`statvfs`' `f_bavail`).
        public var available: Int64

        /// Values from a heartbeat are taken as they come: a negative one counts as 0.
        public init(used: Int64, available: Int64) {
            self.used = max(0, used)
            self.available = max(0, available)
        }

        /// A disk report's numbers.
        public init(_ report: DiskReport.Usage) {
            self.init(used: report.used, available: report.free)
        }

        /// What the fill is a share of: used + available.
        public var capacity: Int64 { used.saturatingAdd(available) }

        /// The fill in percent (0 to 100), as `df`'s Use% (which rounds it up to a whole number).
        public var percent: Double { Self.percent(used: Double(used), capacity: capacity) }

        /// `used` bytes in percent of `capacity` bytes (0 for an empty capacity).
        public static func percent(used: Double, capacity: Int64) -> Double {
            capacity > 0 ? used * 100 / Double(capacity) : 0
        }

        /// The bytes of `percent` of the capacity.
        public func bytes(atPercent percent: Int) -> Int64 {
            Int64(clamping: Double(capacity) * Double(percent) / 100)
        }
    }

    /// Why a move of `bytes` into `level` must wait (its disk would rise above the high watermark,
    /// counting `inFlight` bytes other moves are writing there), or nil when it may go. A content
    /// larger than the whole room below the high watermark of an empty disk never fits: the reason
    /// then starts with `doesNotFitPrefix`, and the rebalancer sends the job to the dead letters
    /// (`does_not_fit`) instead of displacing residents for it.
    public func admission(into level: String, usage: Usage, adding bytes: Int64, inFlight: Int64 = 0) -> String? {
        guard let high = policies[level]?.highWater, usage.capacity > 0 else { return nil }
        if let reason = doesNotFit(level, usage: usage, bytes: bytes) { return reason }
        let after = Usage.percent(used: Double(usage.used) + Double(inFlight) + Double(bytes), capacity: usage.capacity)
        guard after > Double(high) else { return nil }
        return "\(level) would be at \(after.formatted(decimals: 1)) % (high watermark \(high) %)"
    }

    /// Starts the reason of a content that cannot fit below a level's high watermark even on an
    /// empty disk.
    public static let doesNotFitPrefix = "does not fit: "

    /// Why a content of `bytes` can never be moved into `level` (larger than the level's whole room
    /// below its high watermark, the disk empty), or nil when it could.
    public func doesNotFit(_ level: String, usage: Usage, bytes: Int64) -> String? {
        guard let high = policies[level]?.highWater, usage.capacity > 0 else { return nil }
        let limit = usage.bytes(atPercent: high)
        guard bytes > limit else { return nil }
        return Self.doesNotFitPrefix + "a file of \(OperatorValues.formatBytes(bytes)) cannot fit under \(level)'s high watermark \(high) % "
            + "even on an empty disk (room \(OperatorValues.formatBytes(limit)) of \(OperatorValues.formatBytes(usage.capacity)))"
    }

    /// The bytes of a level's disk at its high watermark and at its low one (the high one when no low
    /// one is set); nil without a high watermark.
    public func watermarkBytes(of level: String, usage: Usage) -> (high: Int64, low: Int64)? {
        guard let high = policies[level]?.highWater, usage.capacity > 0 else { return nil }
        let low = min(high, policies[level]?.lowWater ?? high)
        return (usage.bytes(atPercent: high), usage.bytes(atPercent: low))
    }

    /// Bytes a level may still take before it rises above its high watermark (negative when it is
    /// above already); nil when it has none.
    public func room(in level: String, usage: Usage) -> Int64? {
        guard let high = policies[level]?.highWater, usage.capacity > 0 else { return nil }
        return usage.bytes(atPercent: high).saturatingSubtract(usage.used)
    }

    /// Bytes to move off a level that is above its high watermark to bring it to its low one
    /// (the high one when no low one is set); nil when it is not above.
    public func excess(of level: String, usage: Usage) -> Int64? {
        guard let high = policies[level]?.highWater, usage.capacity > 0, usage.percent > Double(high) else { return nil }
        let low = min(high, policies[level]?.lowWater ?? high)
        return max(1, usage.used.saturatingSubtract(usage.bytes(atPercent: low)))
    }

    /// The order a worker takes queues in: higher `priority` first, then higher levels first, so
    /// promotions (hot content) go before demotions.
    public func takingOrder(_ levels: [String]) -> [String] {
        let ranked = rankedLevels
        return levels.enumerated().sorted { a, b in
            let pa = policies[a.element]?.priority ?? 0, pb = policies[b.element]?.priority ?? 0
            if pa != pb { return pa > pb }
            let ra = ranked.firstIndex(of: a.element) ?? Int.max, rb = ranked.firstIndex(of: b.element) ?? Int.max
            if ra != rb { return ra < rb }
            return a.offset < b.offset
        }.map(\.element)
    }
}

/// A hit counter that halves every `halfLife`: `value(at:)` of hits recorded at earlier times.
/// Stored as a *score* — log2(value) + t / halfLife — which orders contents by their current
/// value whenever they are compared, so "the coldest residents" is one range query on a sorted set
/// however long ago each was last touched.
public struct DecayingCounter: Equatable, Sendable {
    public let halfLifeMilliseconds: Double

    public init(halfLife: Duration) {
        halfLifeMilliseconds = max(1, Double(halfLife.milliseconds))
    }

    /// The counter's value at `now` (ms) from one stored at `storedAt`. A clock that stepped back
    /// (`now` before `storedAt`) decays nothing: the value stays as stored.
    public func value(_ stored: Double, storedAt: Int64, now: Int64) -> Double {
        let elapsed = max(0, Double(now) - Double(storedAt))
        return stored * exp2(-elapsed / halfLifeMilliseconds)
    }

    /// The value after `hits` more at `now`.
    public func adding(_ hits: Double, to stored: Double, storedAt: Int64, now: Int64) -> Double {
        value(stored, storedAt: storedAt, now: now) + hits
    }

    /// The sorted-set score of `value` at `time`.
    public func score(_ value: Double, at time: Int64) -> Double {
        log2(max(value, 1e-300)) + Double(time) / halfLifeMilliseconds
    }

    /// The value at `now` of a score, within `0…CountBound.max` (a score written by a clock far
    /// ahead, or one of 1e300, reads as the largest count, not as infinity).
    public func value(ofScore score: Double, now: Int64) -> Double {
        let value = exp2(score - Double(now) / halfLifeMilliseconds)
        return value.isNaN ? 0 : min(value, Double(CountBound.max))
    }

    /// The score below which a content's value at `now` is under `threshold`.
    public func score(below threshold: Double, now: Int64) -> Double { score(threshold, at: now) }
}
