import RelocatorApp
import Hummingbird
import RedisClient
import RelocatorCore
import SQLStore

/// An error a client may see: an HTTP status, a machine-readable code and a message that names
/// what was wrong, never internals. Answered as `{"error": "<code>", "message": "…"}`.
public struct APIError: HTTPResponseError, CustomStringConvertible, Sendable, Equatable {
    /// The machine-readable codes, each with its status.
    public struct Code: RawRepresentable, Hashable, Sendable {
        public var rawValue: String
        public var status: HTTPResponse.Status

        public init(rawValue: String) {
            self.rawValue = rawValue
            status = .badRequest
        }

        public init(_ rawValue: String, _ status: HTTPResponse.Status) {
            self.rawValue = rawValue
            self.status = status
        }

        public static let badRequest = Code("bad_request", .badRequest)
        public static let unauthorized = Code("unauthorized", .unauthorized)
        public static let forbidden = Code("forbidden", .forbidden)
        public static let notFound = Code("not_found", .notFound)
        public static let unknownCID = Code("unknown_cid", .notFound)
        public static let noJob = Code("no_job", .notFound)
        public static let unknownLevel = Code("unknown_level", .notFound)
        public static let methodNotAllowed = Code("method_not_allowed", .methodNotAllowed)
        public static let payloadTooLarge = Code("payload_too_large", .contentTooLarge)
        public static let unsupportedMediaType = Code("unsupported_media_type", .unsupportedMediaType)
        public static let invalidFilename = Code("invalid_filename", .unprocessableContent)
        public static let noLevel = Code("no_level", .unprocessableContent)
        public static let unavailable = Code("unavailable", .serviceUnavailable)
        public static let internalError = Code("internal", .internalServerError)
    }

    public var code: Code
    public var message: String
    /// Extra headers (`Allow` on 405, `WWW-Authenticate` on 401).
    public var headers: HTTPFields

    public init(_ code: Code, _ message: String, headers: HTTPFields = [:]) {
        self.code = code
        self.message = message
        self.headers = headers
    }

    public var status: HTTPResponse.Status { code.status }
    public var description: String { message }

    /// The JSON body of every error answer.
    public struct Body: Codable, Equatable, Sendable {
        public var error: String
        public var message: String
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        response()
    }

    /// The answer, without a request (the error middleware and tests).
    public func response() -> Response {
        var fields = headers
        fields[.contentType] = "application/json"
        var buffer = ByteBuffer()
        CompatJSON.writeObject([("error", .string(code.rawValue)), ("message", .string(message))], compact: true, to: &buffer)
        return Response(status: status, headers: fields, body: .init(byteBuffer: buffer))
    }

    public static func badRequest(_ message: String) -> APIError { APIError(.badRequest, message) }
    public static func unknownContent(_ cid: Int64) -> APIError { APIError(.unknownCID, "no content with cid \(cid)") }
    public static func noJob(_ cid: Int64) -> APIError { APIError(.noJob, "no job for cid \(cid)") }
    public static func unprocessable(_ code: Code, _ message: String) -> APIError { APIError(code, message) }
    public static let unauthorized = APIError(.unauthorized, "a valid 'Authorization: Bearer <token>' header is required",
                                              headers: [.wwwAuthenticate: "Bearer realm=\"relocator\""])
    /// The dashboard's pages: a browser asks for the read credential as a password (any user name).
    public static let unauthorizedBrowser = APIError(.unauthorized, "this page needs the read credential (as the password; any user name)",
                                                     headers: [.wwwAuthenticate: "Basic realm=\"relocator\", charset=\"UTF-8\""])

    /// A valid credential of another scope (a submitter's on an administrator's route).
    public static func forbidden(_ scope: AccessScope) -> APIError {
        let what: String
        switch scope {
        case .admin: what = "the administrator credential (RELOCATOR_ADMIN_TOKEN)"
        case .submit: what = "the submit credential (RELOCATOR_SUBMIT_TOKEN) or the administrator's"
        case .read, .health: what = "the read credential (RELOCATOR_READ_TOKEN) or the administrator's"
        }
        return APIError(.forbidden, "this credential may not do that; this route needs \(what)")
    }

    /// Redis or the database cannot be reached: 503, without the server's own words.
    public static func unavailable(_ what: String) -> APIError {
        APIError(.unavailable, "\(what) is unreachable; try again later")
    }

    /// Maps a lower-level failure to what a client may see; nil for one that is a bug (a 500).
    public static func from(_ error: any Error) -> APIError? {
        switch error {
        case let error as APIError: return error
        case let error as AppError:
            let status: HTTPResponse.Status
            switch error.kind {
            case .badRequest: status = .badRequest
            case .notFound: status = .notFound
            case .unprocessable: status = .unprocessableContent
            case .unavailable: status = .serviceUnavailable
            case .conflict: status = .conflict
            }
            return APIError(Code(error.code, status), error.message)
        case let error as RedisError where [.connection, .timeout, .authentication, .closed].contains(error.code):
            return .unavailable("Redis")
        case let error as RedisError where error.code == .replication:
            return APIError(.unavailable, "Redis did not confirm this write on its replicas in time (\(error.message.prefix(160))): "
                + "it may or may not have been kept; sending it again is safe (counts coalesce)")
        case let error as RedisError where error.isOutOfMemory:
            return APIError(.unavailable, "Redis is out of memory (maxmemory reached) and refuses new writes; nothing was written; try again later")
        case let error as RedisError where error.isTransientServerState:
            return APIError(.unavailable, "Redis cannot answer now (\(error.message.prefix(80))); try again later")
        case let error as SQLError:
            switch error.code {
            case .connectionRefused, .connectionLost, .authenticationFailed, .unknownDatabase:
                return .unavailable("the database")
            case .timedOut:
                return APIError(.unavailable, "a database statement ran past its time limit (\(SessionLimits.answerTimeoutSetting)); try again later")
            case .databaseFileMissing:
                return APIError(.unavailable, "the database file does not exist: run `relocator migrate` to create it")
            case .schemaMissing:
                return APIError(.unavailable, "the database has no tables yet: run `relocator migrate`")
            case .permissionDenied:
                return APIError(.unavailable, "the database refused access (permissions or a read-only database): check the API's database user and file")
            default: return nil
            }
        case let error as OutageDescribing:
            return error.outage.map { APIError(.unavailable, $0) }
        default: return nil
        }
    }
}
