import ArgumentParser
import Logging
import RelocatorCore
import RelocatorMetrics
import ServiceLifecycle

/// `--metrics-port` and `--metrics-host` of `worker` and `committer`: metrics on by default, on the
/// first free port from 9464 up.
struct MetricsOptions: ParsableArguments {
    /// Where the metrics server listens.
    enum Port: Equatable, Sendable {
        /// The first free port of `MetricsServer.automaticPorts`.
        case automatic
        /// No metrics server.
        case off
        case fixed(Int)

        static let parse: @Sendable (String) throws -> Port = { text in
            let port = try OptionValue.int(0...65535)(text)
            return port == 0 ? .off : .fixed(port)
        }
    }

    @Option(parsing: .unconditional,
            help: """
                Serve Prometheus metrics (GET /metrics) on this port, 1 to 65535; 0 for none (default: the first free port \
                from 9464 to 9563, shown by status).
                """,
            transform: Port.parse)
    var metricsPort: Port = .automatic

    @Option(help: "Address the metrics server listens on (0.0.0.0 for a Prometheus on another machine).")
    var metricsHost = "127.0.0.1"

    func validate() throws {
        if metricsPort == .off && metricsHost != "127.0.0.1" {
            throw ValidationError("--metrics-host needs a metrics server; --metrics-port 0 turns it off")
        }
    }

    /// The metrics server to run beside the worker or committer, unless turned off: the process's
    /// metrics go to Prometheus from then on. A port given that cannot be listened on fails at
    /// once; `onPort` learns the port listened on (for the heartbeat).
    func services(logger: Logger, onPort: @escaping @Sendable (Int) async -> Void = { _ in }) async throws -> [any Service] {
        let host = metricsHost
        let ports: [Int]
        switch metricsPort {
        case .off:
            return []
        case .automatic:
            // The address itself must be one to listen on (any free port of it): else every port
            // of the range would be tried in vain.
            do {
                try await BlockingExecutor.shared.run { try ListenProbe.check(host: host, port: 0) }
            } catch {
                throw CommandFailure("--metrics-host \(host): \(error)")
            }
            ports = MetricsServer.automaticPorts
        case .fixed(let port):
            try await BlockingExecutor.shared.run { try ListenProbe.check(host: host, port: port) }
            ports = [port]
        }
        return [MetricsServer(host: host, ports: ports, metrics: PrometheusMetrics.bootstrap(), logger: logger, onServerRunning: onPort)]
    }
}
