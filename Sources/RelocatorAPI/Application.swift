import Hummingbird
import Logging
import RelocatorCore
import RelocatorMetrics
import ServiceLifecycle

/// Settings of the HTTP API.
public struct APIConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// Who may submit, administer and read (`AccessMiddleware`).
    public var credentials: APICredentials
    /// Largest request body accepted.
    public var maxBodyBytes: Int

    /// `token` is the older single credential (`RELOCATOR_API_TOKEN`): submitting and administering.
    public var token: String? {
        get { credentials.submit == credentials.admin ? credentials.admin : nil }
        set { credentials = APICredentials(read: credentials.read, legacy: newValue) }
    }

    public init(host: String = "127.0.0.1", port: Int = 8080, credentials: APICredentials = APICredentials(), maxBodyBytes: Int = 64 * 1024) {
        self.host = host
        self.port = port
        self.credentials = credentials
        self.maxBodyBytes = maxBodyBytes
    }
}

/// The request context of every route: bodies up to 64 KiB, answers encoded by `RelocatorJSON`.
public struct APIRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }

    public var maxUploadSize: Int { 64 * 1024 }
    public var responseEncoder: RelocatorResponseEncoder { RelocatorResponseEncoder() }
}

/// The router with every route: the original's two, `/v1`, health, `/metrics` and the dashboard.
/// `metrics` is the process's Prometheus registry (`PrometheusMetrics.bootstrap()`); without it
/// `/metrics` is not served and no request metrics are recorded. Tests drive this router without
/// a socket.
public func buildRouter(service: RelocationService, configuration: APIConfiguration, logger: Logger,
                        metrics: PrometheusMetrics? = nil) -> Router<APIRequestContext> {
    let router = Router(context: APIRequestContext.self)
    let routes = RouteRegistry(router: router)
    registerRoutes(routes, service: service, configuration: configuration, metrics: metrics)
    if let metrics { router.add(middleware: RequestMetricsMiddleware<APIRequestContext>(metrics: metrics)) }
    router.add(middleware: ErrorMiddleware(logger: logger, maxBody: configuration.maxBodyBytes, routes: routes.table))
    if !configuration.credentials.isOpen {
        router.add(middleware: AccessMiddleware(credentials: configuration.credentials, routes: routes.table))
    }
    routes.commit()
    return router
}

/// The HTTP API as a service. `relocator serve` runs it (`try await app.runService()`); the first
/// readiness check is logged once the server listens, and a line is logged when a signal stops it.
/// `metrics` defaults to the process's registry, bootstrapped into swift-metrics here.
public func buildApplication(service: RelocationService, configuration: APIConfiguration, logger: Logger,
                             metrics: PrometheusMetrics? = PrometheusMetrics.bootstrap(),
                             onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
    let router = buildRouter(service: service, configuration: configuration, logger: logger, metrics: metrics)
    return Application(
        router: router,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "relocator"),
        services: [ShutdownLog(logger: logger)],
        onServerRunning: { channel in
            let port = channel.localAddress?.port ?? configuration.port
            let readiness = await service.readiness()
            if readiness.isReady {
                logger.info("listening; \(readiness.summary)", metadata: ["http.port": "\(port)"])
            } else {
                logger.warning("listening; \(readiness.summary)", metadata: ["http.port": "\(port)"])
            }
            await onServerRunning(port)
        },
        logger: logger
    )
}

/// Logs one line when SIGTERM or SIGINT starts the graceful shutdown of `serve`.
struct ShutdownLog: Service {
    let logger: Logger

    func run() async throws {
        try await gracefulShutdown()
        logger.notice("stopping on SIGTERM/SIGINT: no new connections; finishing the requests in flight")
    }
}

/// Registers routes on the router and records their methods for the 405 answers. Middleware
/// must be added to a Hummingbird router before its routes, so the routes are collected first
/// and added by `commit()`.
final class RouteRegistry: @unchecked Sendable {
    typealias Handler = @Sendable (Request, APIRequestContext) async throws -> Response
    let router: Router<APIRequestContext>
    private(set) var table = RouteTable()
    private var pending: [(String, HTTPRequest.Method, Handler)] = []

    init(router: Router<APIRequestContext>) {
        self.router = router
    }

    /// A read (the health routes say `.health`).
    func get(_ path: String, scope: AccessScope = .read, _ handler: @escaping Handler) { add(path, .get, scope, handler) }
    /// A change: a submission or an administrator's action.
    func post(_ path: String, scope: AccessScope, _ handler: @escaping Handler) { add(path, .post, scope, handler) }

    private func add(_ path: String, _ method: HTTPRequest.Method, _ scope: AccessScope, _ handler: @escaping Handler) {
        table.add(path, method, scope: scope)
        pending.append((path, method, handler))
    }

    func commit() {
        for (path, method, handler) in pending { router.on(RouterPath(path), method: method, use: handler) }
        pending.removeAll()
    }
}

/// What a credential opens: `GET /v1/access`.
struct AccessView: Encodable, Sendable {
    var read: Bool
    var submit: Bool
    var admin: Bool
}

/// A JSON answer through the project's one encoding.
func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
    let data = try RelocatorJSON.encoder().encode(value)
    var buffer = ByteBufferAllocator().buffer(capacity: data.count)
    buffer.writeBytes(data)
    return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: buffer))
}

func registerRoutes(_ routes: RouteRegistry, service: RelocationService, configuration: APIConfiguration, metrics: PrometheusMetrics?) {
    CompatRoutes(service: service, maxBody: configuration.maxBodyBytes).register(routes)
    V1Routes(service: service, maxBody: configuration.maxBodyBytes).register(routes)
    HealthRoutes(service: service, metrics: metrics).register(routes)
    DashboardRoutes(service: service, adminRequired: configuration.credentials.admin != nil).register(routes)
    routes.get("v1/access", scope: .health) { request, _ in
        // What the presented credential opens (the dashboard asks before it enables its buttons).
        let scopes = configuration.credentials.scopes(of: request.headers[.authorization])
        return try json(AccessView(read: scopes.contains(.read), submit: scopes.contains(.submit), admin: scopes.contains(.admin)))
    }
}
