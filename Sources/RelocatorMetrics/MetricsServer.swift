import Hummingbird
import Logging
import ServiceLifecycle

/// A small HTTP server for the metrics of a worker or committer: `GET /metrics` (Prometheus
/// text format) and `GET /healthz`. A `Service`: run it in the command's `ServiceGroup`; it stops
/// with the group's graceful shutdown. `relocator worker|committer --metrics-port N
/// [--metrics-host 127.0.0.1]` start one.
public struct MetricsServer: Service {
    public let host: String
    public let port: Int
    let metrics: PrometheusMetrics
    let logger: Logger
    let onServerRunning: @Sendable (Int) async -> Void

    /// `port` 0 picks a free port, passed to `onServerRunning`.
    public init(host: String = "127.0.0.1", port: Int, metrics: PrometheusMetrics, logger: Logger,
                onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) {
        self.host = host
        self.port = port
        self.metrics = metrics
        self.logger = logger
        self.onServerRunning = onServerRunning
    }

    public func run() async throws {
        let router = Router()
        let metrics = self.metrics
        router.get("metrics") { _, _ in PrometheusMetrics.response(metrics.scrape()) }
        router.get("healthz") { _, _ in Response(status: .ok, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: "ok\n"))) }
        let logger = self.logger, onServerRunning = self.onServerRunning, configuredPort = port, host = self.host
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: configuredPort), serverName: "relocator-metrics"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? configuredPort
                logger.info("metrics on http://\(host):\(port)/metrics")
                await onServerRunning(port)
            },
            logger: logger)
        try await app.run()
    }
}
