import CoreMetrics
import JobQueue
import Synchronization

/// What the worker and the committer count, through swift-metrics (the executable bootstraps the
/// Prometheus factory; without it these are no-ops). Names follow Prometheus: snake case, base
/// units, `_total` for counters.
enum ServiceMetrics {
    /// A move succeeded: `method` is how, in the words of the worker's log (`linked`, `copied`,
    /// `already_in_place`, `MoveResult.Method`).
    /// (The metrics of each pair of levels and each method are made once: making one looks it up in
    /// the registry, under its lock, on every move otherwise.)
    static func moved(from: String, to: String, method: String, bytes: Int64, duration: Duration) {
        let (moves, movedBytes, timer) = movedMetrics.withLock { made in
            let key = MovedKey(from: from, to: to, method: method)
            if let metrics = made[key] { return metrics }
            let metrics = (Counter(label: "relocator_moves_total", dimensions: [("from", from), ("to", to), ("outcome", "moved")]),
                           Counter(label: "relocator_moved_bytes_total", dimensions: [("from", from), ("to", to)]),
                           Timer(label: "relocator_move_duration_seconds", dimensions: [("method", method)]))
            made[key] = metrics
            return metrics
        }
        moves.increment()
        movedBytes.increment(by: Int(max(0, bytes)))
        timer.recordNanoseconds(duration.nanoseconds)
    }

    private struct MovedKey: Hashable {
        var from: String
        var to: String
        var method: String
    }

    private static let movedMetrics = Mutex<[MovedKey: (Counter, Counter, Timer)]>([:])

    /// A move failed: `outcome` is retried or dead; `reason` the failure's code (`no_space`,
    /// `source_missing`…, `MoveError.Kind`).
    static func failed(from: String, to: String, outcome: String, reason: String) {
        Counter(label: "relocator_moves_total", dimensions: [("from", from), ("to", to), ("outcome", outcome), ("reason", reason)]).increment()
    }

    /// Bytes a pull from another host received, fsynced and recorded verified (`PullMetering`).
    static func pulled(from: String, to: String, bytes: Int64) {
        Counter(label: "relocator_pulled_bytes_total", dimensions: [("from", from), ("to", to)]).increment(by: Int(max(0, bytes)))
    }

    /// A pull from another host ended: `outcome` is what the queue did with its end (`Completion`:
    /// done, retrying, dead, deferred, reversed, dropped, stale).
    static func pull(from: String, to: String, outcome: String) {
        Counter(label: "relocator_pulls_total", dimensions: [("from", from), ("to", to), ("outcome", outcome)]).increment()
    }

    /// Time a move spent in one of its phases (`MovePhase`), or the worker in one of its calls to
    /// the queue around a move (`take`, `claim`, `ack`): the cost of a job, step by step.
    static func phase(_ name: String, _ duration: Duration) {
        phaseTimers.withLock { timers in
            if let timer = timers[name] { return timer }
            let timer = Timer(label: "relocator_move_phase_seconds", dimensions: [("phase", name)])
            timers[name] = timer
            return timer
        }.recordNanoseconds(duration.nanoseconds)
    }

    private static let phaseTimers = Mutex<[String: Timer]>([:])

    /// 1 while a level is out of service for this worker (its directory is no longer the one it
    /// checked at start), else 0.
    static func levelUnavailable(_ level: String, _ unavailable: Bool) {
        Gauge(label: "relocator_level_unavailable", dimensions: [("level", level)]).record(unavailable ? 1 : 0)
    }

    /// A batch was written in SQL.
    static func commit(jobs: Int, duration: Duration) {
        Counter(label: "relocator_commits_total").increment(by: jobs)
        Timer(label: "relocator_commit_batch_seconds").recordNanoseconds(duration.nanoseconds)
    }

    /// A committer transaction failed (it is tried again).
    static func commitFailed() {
        Counter(label: "relocator_commit_failures_total").increment()
    }

    /// How a rebalancer round ended: `done`, `skipped` (another committer holds the lock) or `failed`.
    static func rebalanceRound(_ outcome: String, duration: Duration) {
        Counter(label: "relocator_rebalancer_rounds_total", dimensions: [("outcome", outcome)]).increment()
        guard outcome == "done" else { return }
        Timer(label: "relocator_rebalancer_round_seconds").recordNanoseconds(duration.nanoseconds)
        Gauge(label: "relocator_rebalancer_last_round_timestamp_seconds").record(Double(JobQueue.nowMilliseconds()) / 1000)
    }

    /// The rebalancer queued a move (`Planner.Move.Kind`: watermark, displacement, decay, promotion).
    static func rebalanceQueued(kind: String, from: String, to: String) {
        Counter(label: "relocator_rebalancer_moves_queued_total", dimensions: [("kind", kind), ("from", from), ("to", to)]).increment()
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
