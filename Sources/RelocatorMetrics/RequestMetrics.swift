import Hummingbird
import Prometheus
import Synchronization

/// The HTTP metrics of the API, recorded around every request (outside the error middleware, so
/// every answer is seen with its final status): requests and their durations by route, method
/// and status; errors by status class (4xx, 5xx); requests in progress by method. `route` is the
/// route's pattern (`/v1/contents/{cid}`), or `unmatched` for a request no route takes (an unknown
/// path, or a method the path does not have), so that probes of random paths make one series, not
/// one each.
public struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let series: RequestSeries

    public init(metrics: PrometheusMetrics) {
        series = RequestSeries(registry: metrics.registry)
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        let method = request.method.rawValue
        let active = series.active(method)
        active.increment()
        defer { active.decrement() }
        do {
            let response = try await next(request, context)
            series.record(route: context.endpointPath, method: method, status: Int(response.status.code), duration: .now - started)
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status.code ?? 500
            series.record(route: context.endpointPath, method: method, status: Int(status), duration: .now - started)
            throw error
        }
    }
}

/// The series of `RequestMetricsMiddleware`, made once per label set.
final class RequestSeries: Sendable {
    static let unmatched = "unmatched"
    static let buckets: [Duration] = MetricNames.seconds([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5])

    struct Key: Hashable {
        var route: String
        var method: String
        var status: Int
    }

    struct Series: Sendable {
        let requests: Prometheus.Counter
        let errors: Prometheus.Counter?
        let duration: DurationHistogram
    }

    let registry: PrometheusCollectorRegistry
    private let series = Mutex<[Key: Series]>([:])
    private let actives = Mutex<[String: Gauge]>([:])

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    func active(_ method: String) -> Gauge {
        actives.withLock { actives in
            if let gauge = actives[method] { return gauge }
            let gauge = registry.makeGauge(
                descriptor: MetricNameDescriptor(metricName: "relocator_http_active_requests", unitName: "", helpText: "HTTP requests in progress, by method."),
                labels: [("method", method)])
            actives[method] = gauge
            return gauge
        }
    }

    func record(route: String?, method: String, status: Int, duration: Duration) {
        // Hummingbird's router names a request no route takes "NotFound" (a route's pattern starts with "/").
        let key = Key(route: route.flatMap { $0.hasPrefix("/") ? $0 : nil } ?? Self.unmatched, method: method, status: status)
        let found = series.withLock { series in
            if let found = series[key] { return found }
            let labels = [("route", key.route), ("method", method), ("status", String(status))]
            let made = Series(
                requests: registry.makeCounter(
                    descriptor: MetricNameDescriptor(metricName: "relocator_http_requests_total", unitName: "",
                                                     helpText: "HTTP requests answered, by route (unmatched: no route took the path), method and status."),
                    labels: labels),
                errors: status >= 400 ? registry.makeCounter(
                    descriptor: MetricNameDescriptor(metricName: "relocator_http_request_errors_total", unitName: "",
                                                     helpText: "HTTP requests answered with an error, by route, method and status class (4xx, 5xx)."),
                    labels: [("route", key.route), ("method", method), ("class", status >= 500 ? "5xx" : "4xx")]) : nil,
                duration: registry.makeDurationHistogram(
                    descriptor: MetricNameDescriptor(metricName: "relocator_http_request_duration_seconds", unitName: "",
                                                     helpText: "How long the API took to answer an HTTP request, by route, method and status."),
                    labels: labels, buckets: Self.buckets))
            series[key] = made
            return made
        }
        found.requests.increment()
        found.errors?.increment()
        found.duration.record(duration)
    }
}
