import Synchronization

/// Moves per minute over the last hour, counted in the API process from the queue's cumulative
/// `moved` counter (the `stats` hash): each time the statistics are read (at most once a second,
/// when `/metrics`, the dashboard or `/v1/queues` asks), the growth since the previous reading is
/// spread evenly over the minutes between the two. So it covers the time this process has been
/// reading; a restart starts an empty hour.
public final class MoveRate: Sendable {
    private struct State {
        var last: (at: Int64, moved: Int64)?
        /// Moves per minute, keyed by minute number (ms / 60,000).
        var minutes: [Int64: Double] = [:]
    }

    private let state = Mutex(State())
    public static let window = 60

    public init() {}

    /// Records a reading of the cumulative counter at `now` (ms since 1970).
    public func record(moved: Int64, at now: Int64) {
        state.withLock { state in
            defer { state.last = (now, moved) }
            guard let last = state.last, now > last.at else { return }
            // A counter that went down was reset (Redis flushed): start again from here.
            let growth = moved.saturatingSubtract(last.moved)
            guard growth > 0 else { return }
            let first = last.at / 60_000, final = now / 60_000
            let span = Double(now - last.at)
            for minute in max(first, final - Int64(Self.window))...final {
                let start = max(last.at, minute * 60_000), end = min(now, (minute + 1) * 60_000)
                if end > start { state.minutes[minute, default: 0] += Double(growth) * Double(end - start) / span }
            }
            state.minutes = state.minutes.filter { $0.key > final - Int64(Self.window) }
        }
    }

    /// The last `window` minutes, oldest first, ending with the current minute.
    public func perMinute(at now: Int64) -> [Int] {
        let current = now / 60_000
        return state.withLock { state in
            (0..<Self.window).map { offset in Int(Int64(clamping: (state.minutes[current - Int64(Self.window - 1 - offset)] ?? 0).rounded())) }
        }
    }
}
