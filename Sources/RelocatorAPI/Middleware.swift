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

/// Who may do what: each route has a scope, and a scope with a credential set needs it
/// (`Authorization: Bearer <credential>`, or the password of `Basic`, which a browser sends for the
/// dashboard), compared in constant time. An administrator's credential opens every scope. A scope
/// without a credential is open: with none set at all, every route answers as the original did.
/// A request no route takes goes on to its 404 or 405.
struct AccessMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext
    let credentials: APICredentials
    let routes: RouteTable

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let method: HTTPRequest.Method = request.method == .head ? .get : request.method
        guard let scope = routes.scope(for: request.uri.path, method: method) else { return try await next(request, context) }
        let granted = credentials.scopes(of: request.headers[.authorization])
        guard granted.contains(scope) else {
            // A credential of another scope is forbidden; none, or a wrong one, is unauthorized.
            if credentials.scopes(of: nil) != granted { throw APIError.forbidden(scope) }
            throw request.uri.path.hasPrefix("/ui") ? APIError.unauthorizedBrowser : APIError.unauthorized
        }
        return try await next(request, context)
    }
}

/// What a route does, for who may call it.
public enum AccessScope: String, Sendable, CaseIterable {
    /// `/healthz`, `/readyz`: always open.
    case health
    /// Every other read: contents, jobs, queues, dead letters, metrics, the dashboard.
    case read
    /// Counts and hits (the original routes included).
    case submit
    /// Pause, resume, replay and purge.
    case admin
}

/// The credentials of `serve`: `RELOCATOR_SUBMIT_TOKEN`, `RELOCATOR_ADMIN_TOKEN`,
/// `RELOCATOR_READ_TOKEN`, and the older `RELOCATOR_API_TOKEN`, which stands for the submit and the
/// administrator credential where those are not set.
public struct APICredentials: Sendable, Equatable {
    public var submit: String?
    public var admin: String?
    public var read: String?

    public init(submit: String? = nil, admin: String? = nil, read: String? = nil, legacy: String? = nil) {
        func set(_ value: String?) -> String? { value.flatMap { $0.isEmpty ? nil : $0 } }
        self.submit = set(submit) ?? set(legacy)
        self.admin = set(admin) ?? set(legacy)
        self.read = set(read)
    }

    /// No credential at all: every route open.
    public var isOpen: Bool { submit == nil && admin == nil && read == nil }

    /// The scopes an `Authorization` header opens (the open scopes whatever it holds). Every
    /// credential is compared, each in constant time, whatever matches first.
    func scopes(of header: String?) -> Set<AccessScope> {
        let presented = Self.presented(header)
        func matches(_ credential: String?) -> Bool {
            guard let credential else { return false }
            return constantTimeEqual(presented ?? [], Array(credential.utf8)) && presented != nil
        }
        let isAdmin = matches(admin), isSubmit = matches(submit), isRead = matches(read)
        var scopes: Set<AccessScope> = [.health]
        if read == nil || isRead || isAdmin { scopes.insert(.read) }
        if submit == nil || isSubmit || isAdmin { scopes.insert(.submit) }
        if admin == nil || isAdmin { scopes.insert(.admin) }
        return scopes
    }

    /// The credential of `Bearer <credential>` or of `Basic base64(user:credential)`.
    static func presented(_ header: String?) -> [UInt8]? {
        guard let header else { return nil }
        if header.hasPrefix("Bearer ") { return Array(header.utf8.dropFirst("Bearer ".utf8.count)) }
        if header.hasPrefix("Basic "), let decoded = Base64.decode(header.dropFirst("Basic ".count)),
           let colon = decoded.firstIndex(of: UInt8(ascii: ":")) {
            return Array(decoded[decoded.index(after: colon)...])
        }
        return nil
    }
}

/// Two byte strings compared in time that depends on their lengths only.
func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    var difference = UInt8(a.count == b.count ? 0 : 1)
    for index in 0..<max(a.count, b.count) {
        difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
    }
    return difference == 0
}

/// Standard base64 (RFC 4648), for the `Basic` scheme.
enum Base64 {
    static func decode(_ text: Substring) -> [UInt8]? {
        var bits: UInt32 = 0, count = 0
        var out: [UInt8] = []
        for character in text.utf8 {
            let value: UInt8
            switch character {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = character - UInt8(ascii: "A")
            case UInt8(ascii: "a")...UInt8(ascii: "z"): value = character - UInt8(ascii: "a") + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = character - UInt8(ascii: "0") + 52
            case UInt8(ascii: "+"): value = 62
            case UInt8(ascii: "/"): value = 63
            case UInt8(ascii: "="): continue
            default: return nil
            }
            bits = bits << 6 | UInt32(value)
            count += 6
            if count >= 8 {
                count -= 8
                out.append(UInt8(truncatingIfNeeded: bits >> UInt32(count)))
            }
        }
        return out
    }
}

/// The routes, their methods (for the `Allow` header of a 405) and each one's scope.
struct RouteTable: Sendable {
    private var routes: [(components: [Substring], methods: [HTTPRequest.Method])] = []
    private var scopes: [(components: [Substring], method: HTTPRequest.Method, scope: AccessScope)] = []

    mutating func add(_ path: String, _ method: HTTPRequest.Method, scope: AccessScope) {
        let components = path.split(separator: "/")
        if let index = routes.firstIndex(where: { $0.components == components }) {
            if !routes[index].methods.contains(method) { routes[index].methods.append(method) }
        } else {
            routes.append((components, [method]))
        }
        scopes.append((components, method, scope))
    }

    /// The scope of the route `path` and `method` match (a literal component before `:name`); nil
    /// when none does.
    func scope(for path: String, method: HTTPRequest.Method) -> AccessScope? {
        let parts = path.split(separator: "/")
        let matching = scopes.filter { route in
            route.method == method && route.components.count == parts.count
                && zip(route.components, parts).allSatisfy { $0.hasPrefix(":") || $0 == $1 }
        }
        return (matching.first { route in zip(route.components, parts).allSatisfy { $0 == $1 } } ?? matching.first)?.scope
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
