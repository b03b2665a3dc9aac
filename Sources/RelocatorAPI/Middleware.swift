import Hummingbird
import Logging

/// Every error becomes `{"error": code, "message": …}`: a `ServiceError` with its own status,
/// Hummingbird's (404, 413…) with theirs, anything else a bare 500 whose details go to the log only.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let logger: Logger
    let maxBody: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            if let known = ServiceError.from(error) {
                if known.status >= 500 { logger.warning("request failed", metadata: ["http.path": "\(request.uri.path)", "error": "\(error)"]) }
                return JSONBody.response(known.status, ["error": known.code, "message": known.message])
            }
            if let http = error as? any HTTPResponseError {
                let status = Int(http.status.code)
                var message = http.status.reasonPhrase
                let code: String
                switch status {
                case 404: code = "not_found"; message = "no route \(request.method) \(request.uri.path.prefix(200))"
                case 405: code = "method_not_allowed"
                case 413: code = "payload_too_large"; message = "the request body is larger than \(maxBody) bytes"
                default: code = status < 500 ? "bad_request" : "internal"
                }
                return JSONBody.response(status, ["error": code, "message": message])
            }
            logger.error("request failed", metadata: ["http.path": "\(request.uri.path)", "error": "\(error)"])
            return JSONBody.response(500, ["error": "internal", "message": "internal error"])
        }
    }
}

/// With `RELOCATOR_API_TOKEN` set, every mutating route needs `Authorization: Bearer <token>`,
/// compared in constant time. GET routes (reads, health) stay open.
struct TokenMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let token: [UInt8]

    init(token: String) { self.token = Array(token.utf8) }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if request.method == .get || request.method == .head { return try await next(request, context) }
        let header = request.headers[.authorization] ?? ""
        let prefix = "Bearer "
        guard header.hasPrefix(prefix), Self.constantTimeEqual(Array(header.utf8.dropFirst(prefix.utf8.count)), token) else {
            throw ServiceError.unauthorized
        }
        return try await next(request, context)
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for index in 0..<max(a.count, b.count) {
            difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
        }
        return difference == 0
    }
}
