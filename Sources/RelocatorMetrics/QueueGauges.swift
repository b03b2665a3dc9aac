import JobQueue
import Prometheus
import RelocatorCore
import RelocatorServices

/// The queue's state as gauges, set from a `QueueStats` reading when Prometheus scrapes (the API
/// reads Redis at most once a second for them). Disk usage comes from the workers' heartbeats
/// (`DiskReport`): for each level, the report of the live worker that beat last.
public final class QueueGauges: Sendable {
    let registry: PrometheusCollectorRegistry

    public init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    private func gauge(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> Gauge {
        registry.makeGauge(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels)
    }

    /// Sets every gauge from `stats`; `now` is ms since 1970.
    public func update(_ stats: QueueStats, now: Int64) {
        gauge("relocator_queue_stats_up", "1 when the last scrape could read the queue from Redis, else 0.").set(1.0)
        for level in stats.levels {
            let labels = [("level", level.name)]
            gauge("relocator_queue_depth", "Jobs waiting in a level's queue.", labels).set(Double(level.depth))
            gauge("relocator_queue_oldest_age_seconds", "How long the oldest job waiting in a level's queue has waited (0 when empty).", labels)
                .set(Double(level.oldestAgeMilliseconds ?? 0) / 1000)
            gauge("relocator_level_paused", "1 when workers take no job from the level's queue.", labels).set(level.paused ? 1.0 : 0.0)
        }
        gauge("relocator_processing_jobs", "Jobs taken by workers (moves in flight).").set(Double(stats.processing))
        gauge("relocator_retry_jobs", "Jobs waiting for their next attempt.").set(Double(stats.retry))
        gauge("relocator_deferred_jobs", "Jobs deferred (no room on their target, or a residency window).").set(Double(stats.deferred))
        gauge("relocator_dead_jobs", "Jobs in the dead-letter list.").set(Double(stats.dead))
        gauge("relocator_done_jobs", "Moved jobs waiting for the committer.").set(Double(stats.done))
        gauge("relocator_committing_jobs", "Jobs a committer is writing.").set(Double(stats.committing))
        gauge("relocator_workers_alive", "Workers and committers whose heartbeat is current.").set(Double(stats.workers.filter(\.alive).count))
        for (level, usage) in Self.disks(stats) {
            for (kind, value) in [("used", usage.used), ("free", usage.free), ("size", usage.size)] {
                gauge("relocator_level_bytes", "A level's filesystem as its workers see it: used, free (for unprivileged users) and size.",
                      [("level", level), ("kind", kind)]).set(Double(value))
            }
        }
    }

    /// Redis could not be read: the other gauges keep their last values.
    public func markUnavailable() {
        gauge("relocator_queue_stats_up", "1 when the last scrape could read the queue from Redis, else 0.").set(0.0)
    }

    /// Each level's usage from the live worker whose heartbeat is the newest.
    public static func disks(_ stats: QueueStats) -> [String: DiskReport.Usage] {
        var result: [String: (beat: Int64, usage: DiskReport.Usage)] = [:]
        for worker in stats.workers where worker.alive {
            guard let text = worker.info[.disks] else { continue }
            let beat = worker.info[.beatAt].flatMap { Int64($0) } ?? 0
            for (level, usage) in DiskReport(decoding: text).levels where (result[level]?.beat ?? Int64.min) < beat {
                result[level] = (beat, usage)
            }
        }
        return result.mapValues(\.usage)
    }
}
