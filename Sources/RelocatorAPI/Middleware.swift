import Hummingbird
import Logging

/// Every error becomes `{"error": code, "message": …}`: an `APIError` (or a lower-level error it
/// maps) with its own status, Hummingbird's (404, 413…) with theirs, a path that exists under
/// another method a 405 with `Allow`, anything else a bare 500 whose details go to the log only.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext
    let logger: Logger
    let maxBody: Int
    let routes: RouteTable

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            return respond(to: error, request.method, request.uri.path)
        }
    }

    func respond(to error: any Error, _ method: HTTPRequest.Method, _ path: String) -> Response {
        if let known = APIError.from(error) {
            if known.status.code >= 500 { logger.warning("request failed", metadata: ["http.path": "\(path.prefix(200))", "error": "\(error)"]) }
            return known.response()
        }
        if let http = error as? any HTTPResponseError {
            return Self.mapped(http.status, method, path, maxBody: maxBody, routes: routes).response()
        }
        logger.error("request failed", metadata: ["http.path": "\(path.prefix(200))", "error": "\(error)"])
        return APIError(.internalError, "internal error").response()
    }

    /// Hummingbird's own errors in the API's words.
    static func mapped(_ status: HTTPResponse.Status, _ method: HTTPRequest.Method, _ path: String, maxBody: Int, routes: RouteTable) -> APIError {
        switch status.code {
        case 404:
            if let allowed = routes.methods(for: path), !allowed.isEmpty, !allowed.contains(method) {
                let list = allowed.map(\.rawValue).joined(separator: ", ")
                return APIError(.methodNotAllowed, "\(method) is not allowed on \(path.prefix(200)); use \(list)", headers: [.allow: list])
            }
            return APIError(.notFound, "no route \(method) \(path.prefix(200))")
        case 413: return APIError(.payloadTooLarge, "the request body is larger than \(maxBody) bytes")
        case 400..<500: return APIError(APIError.Code("bad_request", status), status.reasonPhrase)
        default: return APIError(.internalError, "internal error")
        }
    }
}

/// With `RELOCATOR_API_TOKEN` set, every mutating route needs `Authorization: Bearer <token>`,
/// compared in constant time. GET routes (reads, health, metrics, the dashboard) stay open, and a
/// request no route takes goes on to its 404 or 405.
struct TokenMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext
    let token: [UInt8]
    let routes: RouteTable

    init(token: String, routes: RouteTable) {
        self.token = Array(token.utf8)
        self.routes = routes
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if request.method == .get || request.method == .head { return try await next(request, context) }
        guard routes.methods(for: request.uri.path)?.contains(request.method) == true else { return try await next(request, context) }
        guard Self.authorized(request.headers[.authorization], token: token) else { throw APIError.unauthorized }
        return try await next(request, context)
    }

    static func authorized(_ header: String?, token: [UInt8]) -> Bool {
        let prefix = "Bearer "
        guard let header, header.hasPrefix(prefix) else { return false }
        return constantTimeEqual(Array(header.utf8.dropFirst(prefix.utf8.count)), token)
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for index in 0..<max(a.count, b.count) {
            difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
        }
        return difference == 0
    }
}

/// The routes and their methods, for the `Allow` header of a 405.
struct RouteTable: Sendable {
    private var routes: [(components: [Substring], methods: [HTTPRequest.Method])] = []

    mutating func add(_ path: String, _ method: HTTPRequest.Method) {
        let components = path.split(separator: "/")
        if let index = routes.firstIndex(where: { $0.components == components }) {
            if !routes[index].methods.contains(method) { routes[index].methods.append(method) }
        } else {
            routes.append((components, [method]))
        }
    }

    /// The methods of the route `path` matches (`:name` matches any one component); nil when none.
    func methods(for path: String) -> [HTTPRequest.Method]? {
        let parts = path.split(separator: "/")
        let matching = routes.filter { route in
            route.components.count == parts.count && zip(route.components, parts).allSatisfy { $0.hasPrefix(":") || $0 == $1 }
        }
        if matching.isEmpty { return nil }
        var methods: [HTTPRequest.Method] = []
        for route in matching { for method in route.methods where !methods.contains(method) { methods.append(method) } }
        return methods
    }
}
