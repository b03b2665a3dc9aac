import CoreMetrics
import Hummingbird
import Prometheus
import RedisClient
import RelocatorCore
import Synchronization

/// The process's Prometheus registry and the swift-metrics factory that feeds it. Every metric
/// gets a `# HELP` line and a Prometheus name (snake case, base units, `_total` counters):
/// Relocator's own names are kept, Hummingbird's request metrics are renamed
/// (`hb.requests` → `relocator_http_requests_total`…), anything else is sanitized.
///
/// Every registry also carries `relocator_build_info{version}`, the standard process metrics
/// (`process_cpu_seconds_total`, `process_resident_memory_bytes`…) and the commands the process
/// sent to Redis (`relocator_redis_commands_sent_total`), read when it is scraped.
public final class PrometheusMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    public let factory: RelocatorMetricsFactory
    let process: ProcessMetrics
    /// The commands sent to Redis already added to their counter.
    private let redisCommandsCounted = Mutex<Int>(0)

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        factory = RelocatorMetricsFactory(registry: registry)
        process = ProcessMetrics(registry: registry)
        registry.makeGauge(descriptor: MetricNameDescriptor(metricName: "relocator_build_info", unitName: "",
                                                           helpText: "Always 1; the labels name the build (version)."),
                           labels: [("version", RelocatorVersion.string)]).set(1.0)
    }

    private static let bootstrapped: PrometheusMetrics = {
        let metrics = PrometheusMetrics()
        MetricsSystem.bootstrap(metrics.factory)
        return metrics
    }()

    /// Installs the factory into swift-metrics the first time (swift-metrics allows that once per
    /// process) and returns the process's metrics; later calls return the same. `serve`, `worker`
    /// and `committer` call it at start.
    public static func bootstrap() -> PrometheusMetrics { bootstrapped }

    /// The text exposition format of everything registered.
    public func scrape() -> [UInt8] {
        process.update()
        let sent = RedisTraffic.commandsSent
        let growth = redisCommandsCounted.withLock { counted -> Int in
            defer { counted = max(counted, sent) }
            return sent - counted
        }
        let commands = registry.makeCounter(descriptor: MetricNameDescriptor(
            metricName: "relocator_redis_commands_sent_total", unitName: "",
            helpText: "Commands this process wrote to Redis (an EVALSHA counts once; Redis's INFO commandstats also counts what scripts run)."))
        if growth > 0 { commands.increment(by: Int64(growth)) }
        var buffer: [UInt8] = []
        buffer.reserveCapacity(16 * 1024)
        registry.emit(into: &buffer)
        return buffer
    }

    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// A scrape as an HTTP answer.
    public static func response(_ bytes: [UInt8]) -> Response {
        var buffer = ByteBufferAllocator().buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        return Response(status: .ok, headers: [.contentType: contentType], body: .init(byteBuffer: buffer))
    }
}

/// Names, help texts and buckets of the metrics Relocator knows.
public enum MetricNames {
    public struct Known: Sendable {
        public var name: String
        public var help: String
        public var buckets: [Duration]?

        public init(name: String, help: String, buckets: [Duration]? = nil) {
            self.name = name
            self.help = help
            self.buckets = buckets
        }
    }

    static func seconds(_ values: [Double]) -> [Duration] { values.map { .nanoseconds(Int64($0 * 1e9)) } }

    /// By the label code passes to swift-metrics.
    public static let known: [String: Known] = Dictionary(uniqueKeysWithValues: [
        Known(name: "relocator_moves_total",
              help: "Moves that ended in this worker, by source and target level, outcome (moved, retried, dead) and, for failures, reason (no_space, source_missing…)."),
        Known(name: "relocator_moved_bytes_total", help: "Bytes of the files this worker moved, by source and target level."),
        Known(name: "relocator_pulls_total",
              help: "Pulls from another host that ended in this worker, by source and target level and what the queue did with the end (done, retrying, dead, deferred, reversed, dropped, stale)."),
        Known(name: "relocator_pulled_bytes_total",
              help: "Bytes this worker pulled from other hosts, counted as each chunk is fsynced and recorded verified, by source and target level."),
        Known(name: "relocator_move_duration_seconds",
              help: "How long a move that succeeded took, by method: linked (one filesystem), copied (across filesystems) or already_in_place (an earlier delivery had moved it).",
              buckets: seconds([0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800])),
        Known(name: "relocator_move_phase_seconds",
              help: "Time a worker slot spent in one phase of a move (copy, fsync, read_back, source_directory_fsync…) or in one queue call around it (take, claim, ack).",
              buckets: seconds([0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5, 30, 300])),
        Known(name: "relocator_level_unavailable",
              help: "1 while a level is out of service for this worker (its directory is no longer the one it checked at start), else 0."),
        Known(name: "relocator_commits_total", help: "Jobs whose new level this committer wrote in SQL."),
        Known(name: "relocator_commit_failures_total", help: "Committer transactions that failed (they are tried again; the jobs wait in Redis)."),
        Known(name: "relocator_commit_batch_seconds", help: "How long one SQL transaction of the committer took.",
              buckets: seconds([0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30])),
        Known(name: "relocator_rebalancer_rounds_total",
              help: "Rounds of this committer's rebalancer, by outcome: done, skipped (another committer holds the rebalancing lock) or failed."),
        Known(name: "relocator_rebalancer_moves_queued_total",
              help: "Moves the rebalancer queued, by kind (watermark demotion, displacement, decay demotion, promotion) and source and target level."),
        Known(name: "relocator_rebalancer_round_seconds", help: "How long one round of the rebalancer took.",
              buckets: seconds([0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30])),
        Known(name: "relocator_rebalancer_last_round_timestamp_seconds", help: "When the rebalancer last finished a round, in seconds since 1970."),
    ].map { ($0.name, $0) })

    /// Dimension names of libraries, shortened.
    public static let labels: [String: String] = [
        "http.route": "route", "http.request.method": "method", "http.response.status_code": "status",
    ]

    /// A Prometheus name for anything else: letters, digits and `_`.
    public static func sanitized(_ label: String) -> String {
        var name = String(label.unicodeScalars.map { scalar -> Character in
            let ok = ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar) || scalar == "_"
            return ok ? Character(scalar) : "_"
        })
        if let first = name.unicodeScalars.first, ("0"..."9").contains(first) { name = "_" + name }
        return name.isEmpty ? "_" : name
    }
}

/// swift-metrics → the Prometheus registry, with Relocator's names and help texts.
public struct RelocatorMetricsFactory: MetricsFactory {
    public let registry: PrometheusCollectorRegistry

    public init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    func descriptor(_ label: String, counter: Bool = false) -> MetricNameDescriptor {
        if let known = MetricNames.known[label] { return MetricNameDescriptor(metricName: known.name, unitName: "", helpText: known.help) }
        var name = MetricNames.sanitized(label)
        if counter && !name.hasSuffix("_total") { name += "_total" }
        return MetricNameDescriptor(metricName: name, unitName: "", helpText: "Recorded as '\(label)'.")
    }

    func labels(_ dimensions: [(String, String)]) -> [(String, String)] {
        dimensions.map { (MetricNames.labels[$0.0] ?? MetricNames.sanitized($0.0), $0.1) }
    }

    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(descriptor: descriptor(label, counter: true), labels: labels(dimensions))
    }

    public func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        registry.makeCounter(descriptor: descriptor(label, counter: true), labels: labels(dimensions))
    }

    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard aggregate else { return registry.makeGauge(descriptor: descriptor(label), labels: labels(dimensions)) }
        return registry.makeValueHistogram(descriptor: descriptor(label), labels: labels(dimensions),
                                           buckets: [1, 5, 10, 50, 100, 500, 1000, 5000, 10000, 50000, 100000])
    }

    public func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(descriptor: descriptor(label), labels: labels(dimensions))
    }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        let buckets = MetricNames.known[label]?.buckets ?? MetricNames.seconds([0.001, 0.01, 0.1, 1, 10, 60, 300])
        return registry.makeDurationHistogram(descriptor: descriptor(label), labels: labels(dimensions), buckets: buckets)
    }

    public func destroyCounter(_ handler: any CounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    public func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    public func destroyRecorder(_ handler: any RecorderHandler) {
        if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
        if let histogram = handler as? ValueHistogram { registry.unregisterValueHistogram(histogram) }
    }

    public func destroyMeter(_ handler: any MeterHandler) {
        if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
    }

    public func destroyTimer(_ handler: any TimerHandler) {
        if let histogram = handler as? DurationHistogram { registry.unregisterDurationHistogram(histogram) }
    }
}
