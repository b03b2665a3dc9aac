import CoreMetrics

/// What the worker and the committer count, through swift-metrics (the executable bootstraps the
/// Prometheus factory; without it these are no-ops). Names follow Prometheus: snake case, base
/// units, `_total` for counters.
enum ServiceMetrics {
    /// A move ended: `outcome` is moved, retried or dead; `method` link (one filesystem) or copy.
    static func move(from: String, to: String, outcome: String, method: String, bytes: Int64, duration: Duration) {
        Counter(label: "relocator_moves_total", dimensions: [("from", from), ("to", to), ("outcome", outcome)]).increment()
        if outcome == "moved" {
            Counter(label: "relocator_moved_bytes_total", dimensions: [("from", from), ("to", to)]).increment(by: Int(max(0, bytes)))
        }
        Timer(label: "relocator_move_duration_seconds", dimensions: [("method", method)]).recordNanoseconds(duration.nanoseconds)
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
