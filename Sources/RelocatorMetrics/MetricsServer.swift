import Hummingbird
import Logging
import ServiceLifecycle
import Synchronization

/// A small HTTP server for the metrics of a worker or committer: `GET /metrics` (Prometheus
/// text format) and `GET /healthz`. A `Service`: run it in the command's `ServiceGroup`; it stops
/// with the group's graceful shutdown. `relocator worker` and `relocator committer` start one on
/// the first free port from 9464 up (`--metrics-port N` for another, 0 for none).
public struct MetricsServer: Service {
    /// The ports tried when none is given: 9464 (Prometheus' registered default for exporters
    /// of this kind) and the 99 after it, so that several workers of one machine each find one.
    public static let automaticPorts = Array(9464...9563)

    public let host: String
    /// Tried in turn until one can be listened on.
    public let ports: [Int]
    let metrics: PrometheusMetrics
    let logger: Logger
    let onServerRunning: @Sendable (Int) async -> Void

    /// `port` 0 picks a free port, passed to `onServerRunning`.
    public init(host: String = "127.0.0.1", port: Int, metrics: PrometheusMetrics, logger: Logger,
                onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) {
        self.init(host: host, ports: [port], metrics: metrics, logger: logger, onServerRunning: onServerRunning)
    }

    /// Listens on the first of `ports` that is free; with none free, logs a warning and serves
    /// nothing (the process runs on without metrics).
    public init(host: String = "127.0.0.1", ports: [Int], metrics: PrometheusMetrics, logger: Logger,
                onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) {
        precondition(!ports.isEmpty)
        self.host = host
        self.ports = ports
        self.metrics = metrics
        self.logger = logger
        self.onServerRunning = onServerRunning
    }

    public func run() async throws {
        let router = Router()
        let metrics = self.metrics
        router.get("metrics") { _, _ in PrometheusMetrics.response(metrics.scrape()) }
        router.get("healthz") { _, _ in Response(status: .ok, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: "ok\n"))) }
        let logger = self.logger, onServerRunning = self.onServerRunning, host = self.host
        // The server's own start line would repeat the one below, in the worker's log.
        var serverLogger = logger
        serverLogger.logLevel = max(logger.logLevel, .notice)
        for configuredPort in ports {
            // A port another process listens on is passed over without a try (and its error log).
            if ports.count > 1, !ListenProbe.isFree(host: host, port: configuredPort) { continue }
            let running = Atomic<Bool>(false)
            let app = Application(
                router: router,
                configuration: .init(address: .hostname(host, port: configuredPort), serverName: "relocator-metrics"),
                onServerRunning: { channel in
                    running.store(true, ordering: .sequentiallyConsistent)
                    let port = channel.localAddress?.port ?? configuredPort
                    logger.info("metrics on http://\(host):\(port)/metrics")
                    await onServerRunning(port)
                },
                logger: serverLogger)
            do {
                return try await app.run()
            } catch {
                // A port taken by another process (between its check and this bind, or all along):
                // the next one. An error once the server ran is the server's.
                guard !running.load(ordering: .sequentiallyConsistent), ports.count > 1, !Task.isCancelled else { throw error }
            }
        }
        logger.warning("no free port from \(ports.first!) to \(ports.last!) on \(host): this process serves no metrics (give --metrics-port)")
        try await gracefulShutdown()
    }
}
