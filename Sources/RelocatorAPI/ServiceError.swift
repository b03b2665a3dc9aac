import RedisClient
import SQLStore

/// An error with the HTTP status and the machine-readable code it is answered with:
/// `{"error": code, "message": message}`. Messages name what was wrong, never internals.
public struct ServiceError: Error, CustomStringConvertible, Sendable, Equatable {
    public var status: Int
    public var code: String
    public var message: String

    public init(status: Int, code: String, message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }

    public static func badRequest(_ message: String) -> ServiceError { .init(status: 400, code: "bad_request", message: message) }
    public static func unknownContent(_ cid: Int64) -> ServiceError {
        .init(status: 404, code: "unknown_cid", message: "no content with cid \(cid)")
    }
    public static func noJob(_ cid: Int64) -> ServiceError { .init(status: 404, code: "no_job", message: "no job for cid \(cid)") }
    public static func unprocessable(_ code: String, _ message: String) -> ServiceError { .init(status: 422, code: code, message: message) }
    public static let unauthorized = ServiceError(status: 401, code: "unauthorized", message: "a valid 'Authorization: Bearer <token>' header is required")

    /// Redis or the database cannot be reached: 503, without the server's own words.
    public static func unavailable(_ what: String) -> ServiceError {
        .init(status: 503, code: "unavailable", message: "\(what) is unreachable; try again later")
    }

    /// Maps a lower-level failure to what a client may see.
    public static func from(_ error: any Error) -> ServiceError? {
        switch error {
        case let error as ServiceError: return error
        case let error as RedisError where [.connection, .timeout, .authentication, .closed].contains(error.code):
            return .unavailable("Redis")
        case let error as SQLError where [.connectionRefused, .connectionLost, .authenticationFailed, .unknownDatabase].contains(error.code):
            return .unavailable("the database")
        default: return nil
        }
    }
}
