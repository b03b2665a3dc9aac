import Hummingbird
import JobQueue
import RelocatorMetrics

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
            routes.get("metrics") { _, _ in
                // The queue's numbers, read from Redis at most once a second however often Prometheus scrapes.
                do {
                    gauges.update(try await service.stats(maxAge: .seconds(1)), now: service.clock())
                } catch {
                    gauges.markUnavailable()
                }
                return PrometheusMetrics.response(metrics.scrape())
            }
        }
    }
}
