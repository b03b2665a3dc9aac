/// Moves and commits per minute as Redis keeps them: a hash per shard of at most 120 fields,
/// `minute mod 120` → `<minute> <count> <bytes>` (minute = ms since 1970 / 60,000), written by
/// `ack.lua` and `committed.lua` (`countThisMinute` in helpers.lua) and read by the dashboard's
/// chart, which is therefore right from the moment a page opens.
public enum ThroughputRing {
    /// The slots one ring holds: two hours, so the last hour is whole whichever slot was written last.
    public static let slots = 120

    public struct Minute: Sendable, Equatable {
        /// Minutes since 1970.
        public var minute: Int64
        public var count: Int64
        public var bytes: Int64

        public init(minute: Int64, count: Int64 = 0, bytes: Int64 = 0) {
            self.minute = minute
            self.count = count
            self.bytes = bytes
        }
    }

    /// Adds `count` (and `bytes`) to the minute of `now` (ms) in a ring's fields, as
    /// `countThisMinute` in helpers.lua does (the memory queue keeps its rings with it).
    public static func add(_ count: Int64, bytes: Int64, now: Int64, to fields: inout [String: String]) {
        let minute = now / 60_000
        let slot = String(minute % Int64(slots))
        let held = decode([slot: fields[slot] ?? ""])[minute] ?? Minute(minute: minute)
        fields[slot] = "\(minute) \(held.count.saturatingAdd(count)) \(held.bytes.saturatingAdd(max(0, bytes)))"
    }

    /// The minutes a ring's fields hold (fields that do not read as a slot are ignored).
    public static func decode(_ fields: [String: String]) -> [Int64: Minute] {
        var minutes: [Int64: Minute] = [:]
        for (slot, value) in fields {
            let parts = value.split(separator: " ")
            guard let slotNumber = Int64(slot), parts.count == 3, let minute = Int64(parts[0]), let count = Int64(parts[1]),
                  let bytes = Int64(parts[2]), minute >= 0, count >= 0, bytes >= 0, minute % Int64(slots) == slotNumber else { continue }
            minutes[minute] = Minute(minute: minute, count: count, bytes: bytes)
        }
        return minutes
    }

    /// The `window` minutes that end with the one of `now` (ms), oldest first, summed over the
    /// rings given (one per shard); a minute no ring holds counts 0.
    public static func window(_ rings: [[String: String]], now: Int64, window: Int = 60) -> [Minute] {
        let current = now / 60_000
        var sums: [Int64: Minute] = [:]
        for ring in rings {
            for (minute, value) in decode(ring) where minute <= current && minute > current - Int64(window) {
                var sum = sums[minute] ?? Minute(minute: minute)
                sum.count = sum.count.saturatingAdd(value.count)
                sum.bytes = sum.bytes.saturatingAdd(value.bytes)
                sums[minute] = sum
            }
        }
        return (0..<window).map { offset in
            let minute = current - Int64(window - 1 - offset)
            return sums[minute] ?? Minute(minute: minute)
        }
    }
}

/// Moves (with their bytes) and commits per minute, oldest minute first (`QueueReading.throughput`).
public struct Throughput: Sendable, Equatable {
    public var moved: [ThroughputRing.Minute]
    public var committed: [ThroughputRing.Minute]

    public init(moved: [ThroughputRing.Minute], committed: [ThroughputRing.Minute]) {
        self.moved = moved
        self.committed = committed
    }
}
