import CoreMetrics
import Synchronization

/// What the worker and the committer count, through swift-metrics (the executable bootstraps the
/// Prometheus factory; without it these are no-ops). Names follow Prometheus: snake case, base
/// units, `_total` for counters.
enum ServiceMetrics {
    /// A move ended: `outcome` is moved, retried or dead; `method` link (one filesystem) or copy.
    static func move(from: String, to: String, outcome: String, method: String, bytes: Int64, duration: Duration, reason: String? = nil) {
        var dimensions = [("from", from), ("to", to), ("outcome", outcome)]
        if let reason { dimensions.append(("reason", reason)) }
        Counter(label: "relocator_moves_total", dimensions: dimensions).increment()
        if outcome == "moved" {
            Counter(label: "relocator_moved_bytes_total", dimensions: [("from", from), ("to", to)]).increment(by: Int(max(0, bytes)))
        }
        Timer(label: "relocator_move_duration_seconds", dimensions: [("method", method)]).recordNanoseconds(duration.nanoseconds)
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
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
