import ArgumentParser
import Logging
import RelocatorCore
import RelocatorMetrics
import ServiceLifecycle

/// `--metrics-port` and `--metrics-host` of `worker` and `committer`: off unless a port is given.
struct MetricsOptions: ParsableArguments {
    @Option(parsing: .unconditional,
            help: "Serve Prometheus metrics (GET /metrics) on this port, 0 to 65535 (0: any free port, logged); off unless given.",
            transform: OptionValue.int(0...65535))
    var metricsPort: Int?

    @Option(help: "Address the metrics server listens on (with --metrics-port).")
    var metricsHost = "127.0.0.1"

    func validate() throws {
        if metricsPort == nil && metricsHost != "127.0.0.1" {
            throw ValidationError("--metrics-host needs --metrics-port")
        }
    }

    /// The metrics server to run beside the worker or committer, when asked for: the process's
    /// metrics go to Prometheus from then on. A port that cannot be listened on fails at once.
    func services(logger: Logger) async throws -> [any Service] {
        guard let port = metricsPort else { return [] }
        let host = metricsHost
        if port != 0 { try await BlockingExecutor.shared.run { try ListenProbe.check(host: host, port: port) } }
        return [MetricsServer(host: host, port: port, metrics: PrometheusMetrics.bootstrap(), logger: logger)]
    }
}
