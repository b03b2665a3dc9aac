import ArgumentParser
import Logging
import ServiceLifecycle

/// `--metrics-port` and `--metrics-host` of `worker` and `committer`: off unless a port is given.
struct MetricsOptions: ParsableArguments {
    @Option(parsing: .unconditional,
            help: "Serve Prometheus metrics on this port, 0 to 65535 (0: any free port); off unless given.",
            transform: OptionValue.int(0...65535))
    var metricsPort: Int?

    @Option(help: "Address the metrics server listens on (with --metrics-port).")
    var metricsHost = "127.0.0.1"

    func validate() throws {
        if metricsPort == nil && metricsHost != "127.0.0.1" {
            throw ValidationError("--metrics-host needs --metrics-port")
        }
    }

    /// The metrics server to run beside the worker or committer, when asked for.
    func service(logger: Logger) throws -> [any Service] {
        guard let port = metricsPort else { return [] }
        throw CommandFailure("--metrics-port \(port): this build has no metrics server yet")
    }
}
