import Hummingbird
import HummingbirdCore
import HummingbirdTLS
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
    /// TLS only, with this certificate and key; nil: plain HTTP/1.1.
    public let tls: TransferServerTLS?
    let onServerRunning: @Sendable (Int) async -> Void

    /// `listen`'s port 0 picks a free port, passed to `onServerRunning`.
    public init(endpoint: TransferEndpoint, listen: TransferAddress, tls: TransferServerTLS? = nil,
                onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) {
        self.endpoint = endpoint
        self.listen = listen
        self.tls = tls
        self.onServerRunning = onServerRunning
    }

    public func run() async throws {
        let logger = endpoint.logger, listen = self.listen, onServerRunning = self.onServerRunning, tls = self.tls
        var serverLogger = logger
        serverLogger.logLevel = max(logger.logLevel, .notice)
        let http1 = HTTPServerBuilder.http1(configuration: .init(idleTimeout: .seconds(Self.idleTimeout)))
        // With a certificate, TLS only: a plaintext request fails the handshake and is never read.
        let server = try tls.map { try HTTPServerBuilder.tls(http1, tlsConfiguration: $0.configuration) } ?? http1
        let app = Application(
            router: endpoint.router(),
            // Pullers keep their connections for the next request (for a while: see the client's
            // `TransferConnections.keepIdle`); one left idle longer is closed here.
            server: server,
            configuration: .init(address: .hostname(listen.host, port: listen.port), serverName: "relocator-transfer"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? listen.port
                logger.info("transfers served on \(TransferAddress(host: listen.host, port: port))\(tls == nil ? "" : " over TLS")")
                await onServerRunning(port)
            },
            logger: serverLogger)
        try await app.run()
    }
}
