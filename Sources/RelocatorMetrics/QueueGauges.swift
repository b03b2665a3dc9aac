import JobQueue
import Prometheus
import RelocatorCore
import RelocatorServices
import Synchronization

/// The queue's state as the API's `/metrics` shows it, set from readings of Redis when Prometheus
/// scrapes (at most once a second): every job state by target level and shard, the workers, the
/// levels' disks (from the workers' heartbeats: for each level, the report of the live worker that
/// beat last), their watermarks (from the placement the committer publishes), the queue-wide
/// counters of the `stats` hash, and whether Redis and the database answer (`/readyz`).
public final class QueueGauges: Sendable {
    let registry: PrometheusCollectorRegistry
    /// The last value of each counter mirrored from Redis, to add only what it grew by.
    private let mirrored = Mutex<[String: Int64]>([:])
    /// The (level, shard) pairs given a value so far, set to 0 when a reading no longer has them.
    private let seen = Mutex<Set<JobsByLevel.Key>>([])

    public init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    static let stateGauges: [JobsByLevel.State: (name: String, help: String)] = [
        .queued: ("relocator_queue_depth", "Jobs waiting in a level's queue, by level and shard."),
        .processing: ("relocator_processing_jobs", "Jobs taken by workers (moves in flight), by target level and shard."),
        .retry: ("relocator_retry_jobs", "Jobs waiting for their next attempt, by target level and shard."),
        .deferred: ("relocator_deferred_jobs", "Jobs deferred without an attempt (no room on their target, a residency window, a busy lock), by target level and shard."),
        .dead: ("relocator_dead_jobs", "Jobs in the dead-letter list, by target level and shard."),
        .done: ("relocator_done_jobs", "Moved jobs waiting for a committer, by target level and shard."),
        .committing: ("relocator_committing_jobs", "Jobs a committer is writing, by target level and shard."),
    ]

    private func gauge(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> Gauge {
        registry.makeGauge(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels)
    }

    private func counter(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> Prometheus.Counter {
        registry.makeCounter(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels)
    }

    static let upHelp = "1 when the last scrape could read the queue from Redis, else 0 (the queue's gauges then keep their last values)."

    /// Sets every gauge from one reading of the queue (`stats`, `jobs`) and the published
    /// placement (`placement`, nil before the committer published one). `shards` is the queue's
    /// shard count: every level has a series in every shard, 0 when empty.
    public func update(_ stats: QueueStats, jobs: JobsByLevel, shards: Int, placement: PlacementSnapshot?) {
        gauge("relocator_queue_stats_up", Self.upHelp).set(1.0)
        let levels = stats.levels.map(\.name)
        var keys = Set(jobs.counts.keys)
        for state in JobsByLevel.State.allCases {
            for level in levels { for shard in 0..<max(1, shards) { keys.insert(.init(state, level, shard)) } }
        }
        let all = seen.withLock { seen in
            seen.formUnion(keys)
            return seen
        }
        for key in all {
            let (name, help) = Self.stateGauges[key.state]!
            gauge(name, help, [("level", key.level), ("shard", String(key.shard))]).set(Double(jobs.counts[key] ?? 0))
            if key.state == .queued {
                gauge("relocator_queue_oldest_age_seconds", "How long the oldest job waiting in a level's queue has waited (0 when empty), by level and shard.",
                      [("level", key.level), ("shard", String(key.shard))]).set(Double(jobs.oldest[key] ?? 0) / 1000)
            }
        }
        for level in stats.levels {
            gauge("relocator_level_paused", "1 while workers take no job from the level's queue.", [("level", level.name)]).set(level.paused ? 1.0 : 0.0)
        }

        // Workers and committers, and the workers serving each level.
        let alive = stats.workers.filter(\.alive)
        for kind in ["worker", "committer"] {
            gauge("relocator_workers_alive", "Workers and committers whose heartbeat is current, by kind.", [("kind", kind)])
                .set(Double(alive.filter { ($0.info[.kind] ?? "worker") == kind }.count))
        }
        for level in levels {
            let serving = alive.filter { ($0.info[.kind] ?? "worker") == "worker" && ($0.info[.levels] ?? "").split(separator: ",").contains(Substring(level)) }
            gauge("relocator_level_workers", "Live workers that serve the level's queue.", [("level", level)]).set(Double(serving.count))
        }

        // Each level's filesystem, as df reports it.
        for (level, usage) in Self.disks(stats) {
            let labels = [("level", level)]
            gauge("relocator_level_used_bytes", "Bytes used on the level's filesystem, from the heartbeat of the live worker that beat last.", labels)
                .set(Double(usage.used))
            gauge("relocator_level_available_bytes", "Bytes of the level's filesystem available to unprivileged users (df's Avail), from the heartbeat of the live worker that beat last.", labels)
                .set(Double(usage.free))
            gauge("relocator_level_size_bytes", "Size of the level's filesystem in bytes, from the heartbeat of the live worker that beat last.", labels)
                .set(Double(usage.size))
            gauge("relocator_level_fill_ratio", "The level's fill as df's Use% computes it, used / (used + available), 0 to 1: what its watermarks are compared with.", labels)
                .set(Placement.Usage(usage).percent / 100)
        }
        for (level, policy) in placement?.policies ?? [:] {
            if let high = policy.highWater {
                gauge("relocator_level_high_watermark_ratio", "A level's high watermark (0 to 1 of its filesystem, as df's Use%): copies into it wait above it, the rebalancer sheds it.",
                      [("level", level)]).set(Double(high) / 100)
            }
            if let low = policy.lowWater ?? policy.highWater {
                gauge("relocator_level_low_watermark_ratio", "How far the rebalancer sheds a level above its high watermark (0 to 1 of its filesystem).",
                      [("level", level)]).set(Double(low) / 100)
            }
        }

        // The queue's own counters (every worker and committer, kept in Redis).
        let totals = stats.totals
        mirror("relocator_queue_moves_total", "Moves that ended, counted in Redis for the whole queue (every worker, across restarts), by outcome (moved, retried, dead).",
               [("outcome", "moved")], totals[.moved] ?? 0)
        mirror("relocator_queue_moves_total", "Moves that ended, counted in Redis for the whole queue (every worker, across restarts), by outcome (moved, retried, dead).",
               [("outcome", "retried")], totals[.retried] ?? 0)
        mirror("relocator_queue_moves_total", "Moves that ended, counted in Redis for the whole queue (every worker, across restarts), by outcome (moved, retried, dead).",
               [("outcome", "dead")], totals[.dead] ?? 0)
        mirror("relocator_queue_moved_bytes_total", "Bytes of the files moved, counted in Redis for the whole queue.", [], totals[.movedBytes] ?? 0)
        mirror("relocator_queue_commits_total", "Jobs whose new level a committer wrote in SQL, counted in Redis for the whole queue.", [], totals[.committed] ?? 0)
    }

    /// A counter that follows a total kept elsewhere: it grows by what the total grew by since the
    /// last reading (a total that went down — Redis emptied — starts it again from there).
    private func mirror(_ name: String, _ help: String, _ labels: [(String, String)], _ total: Int64) {
        let key = name + labels.map { "|\($0.0)=\($0.1)" }.joined()
        let growth = mirrored.withLock { last -> Int64 in
            defer { last[key] = total }
            // (Totals are read from Redis, where anything may be written: a negative one grows the
            // counter by nothing, and one after it counts as a new start.)
            guard let before = last[key], before >= 0 else { return total }
            return total >= before ? total - before : total
        }
        let series = counter(name, help, labels)
        if growth > 0 { series.increment(by: growth) }
    }

    /// Redis could not be read: the other gauges keep their last values.
    public func markUnavailable() {
        gauge("relocator_queue_stats_up", Self.upHelp).set(0.0)
    }

    /// What `/readyz` says: Redis answers PING; the database answers with a current schema.
    public func updateReadiness(redis: Bool, database: Bool) {
        gauge("relocator_redis_up", "1 when Redis answers the API (as /readyz checks), else 0.").set(redis ? 1.0 : 0.0)
        gauge("relocator_database_up", "1 when the database answers the API with a current schema (as /readyz checks), else 0.").set(database ? 1.0 : 0.0)
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

/// The jobs by level the API read last, and the targets of the ids it has seen (an id's target
/// never changes), so that a scrape reads only the targets of new ids.
public final class JobLevelReadings: Sendable {
    private let state = Mutex<(known: [String: String], last: JobsByLevel?, at: ContinuousClock.Instant?)>(([:], nil, nil))

    public init() {}

    /// The last reading when it is younger than `maxAge`, else a new one made by `read` (given
    /// the targets known so far).
    public func reading(maxAge: Duration, _ read: ([String: String]) async throws -> (JobsByLevel, [String: String])) async throws -> JobsByLevel {
        let (known, last, at) = state.withLock { $0 }
        if let last, let at, ContinuousClock.now - at < maxAge { return last }
        let (jobs, targets) = try await read(known)
        state.withLock { $0 = (targets, jobs, .now) }
        return jobs
    }
}
