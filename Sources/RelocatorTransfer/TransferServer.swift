import Hummingbird
import Logging
import RelocatorCore
import ServiceLifecycle

/// The worker's transfer endpoint as a `Service` (HTTP/1.1 on `--transfer-listen`): run it in the
/// worker's `ServiceGroup`; it stops with the group's graceful shutdown.
public struct TransferServer: Service {
    public let endpoint: TransferEndpoint
    /// How long a connection with no request in flight stays open, in seconds.
    public static let idleTimeout: Int64 = 60
    public let listen: TransferAddress
    let onServerRunning: @Sendable (Int) async -> Void

    /// `listen`'s port 0 picks a free port, passed to `onServerRunning`.
    public init(endpoint: TransferEndpoint, listen: TransferAddress, onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) {
        self.endpoint = endpoint
        self.listen = listen
        self.onServerRunning = onServerRunning
    }

    public func run() async throws {
        let logger = endpoint.logger, listen = self.listen, onServerRunning = self.onServerRunning
        var serverLogger = logger
        serverLogger.logLevel = max(logger.logLevel, .notice)
        let app = Application(
            router: endpoint.router(),
            // Pullers keep their connections for the next request (for a while: see the client's
            // `TransferConnections.keepIdle`); one left idle longer is closed here.
            server: .http1(configuration: .init(idleTimeout: .seconds(Self.idleTimeout))),
            configuration: .init(address: .hostname(listen.host, port: listen.port), serverName: "relocator-transfer"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? listen.port
                logger.info("transfers served on \(TransferAddress(host: listen.host, port: port))")
                await onServerRunning(port)
            },
            logger: serverLogger)
        try await app.run()
    }
}
