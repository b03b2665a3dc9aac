import Hummingbird
import JobQueue
import RelocatorCore
import RelocatorMetrics
import RelocatorServices
import Synchronization

/// Liveness, readiness and the Prometheus scrape.
struct HealthRoutes: Sendable {
    let service: RelocationService
    let metrics: PrometheusMetrics?

    func register(_ routes: RouteRegistry) {
        routes.get("healthz", scope: .health) { _, _ in try json(["status": "ok"]) }
        routes.get("readyz", scope: .health) { _, _ in
            let readiness = await service.readiness()
            return try json(readiness, status: readiness.isReady ? .ok : .serviceUnavailable)
        }
        if let metrics {
            let gauges = QueueGauges(registry: metrics.registry)
            let jobs = JobLevelReadings()
            let readiness = ReadinessReadings()
            routes.get("metrics") { _, _ in
                // The queue's numbers, read from Redis at most once a second however often Prometheus scrapes.
                let queue = service.queue
                do {
                    let stats = try await service.stats(maxAge: .seconds(1))
                    let levels = stats.levels.map(\.name)
                    let byLevel = try await jobs.reading(maxAge: .seconds(1)) { known in
                        try await service.redis.withConnection { try queue.jobsByLevel(levels: levels, known: known, on: $0) }
                    }
                    let placement = try await service.redis.withConnection { try queue.placementSnapshot(on: $0) }
                    gauges.update(stats, jobs: byLevel, shards: queue.keys.shardCount,
                                  placement: placement.flatMap { try? PlacementSnapshot(decoding: $0) })
                } catch {
                    gauges.markUnavailable()
                }
                let ready = await readiness.reading(maxAge: .seconds(5)) { await service.readiness() }
                gauges.updateReadiness(redis: ready.redisProblem == nil, database: ready.databaseProblem == nil)
                return PrometheusMetrics.response(metrics.scrape())
            }
        }
    }
}

/// The last readiness the metrics reported, read again once it is older than asked.
final class ReadinessReadings: Sendable {
    private let last = Mutex<(Readiness, ContinuousClock.Instant)?>(nil)

    func reading(maxAge: Duration, _ read: () async -> Readiness) async -> Readiness {
        if let (value, at) = last.withLock({ $0 }), ContinuousClock.now - at < maxAge { return value }
        let value = await read()
        last.withLock { $0 = (value, .now) }
        return value
    }
}
