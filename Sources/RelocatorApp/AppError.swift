import RelocatorCore

/// What a use case refuses, in words that name what was wrong: the API answers it with a 4xx or
/// 503 and the code, the command line prints the message and exits non-zero.
public struct AppError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The request itself is wrong (400).
        case badRequest
        /// What it names does not exist (404).
        case notFound
        /// Well formed, but cannot be done (422).
        case unprocessable
        /// Not now (503).
        case unavailable
        /// Refused as it stands (409): a state that must change first.
        case conflict
    }

    public var kind: Kind
    /// The machine-readable code (`unknown_cid`, `no_level`…).
    public var code: String
    public var message: String

    public init(_ kind: Kind, _ code: String, _ message: String) {
        self.kind = kind
        self.code = code
        self.message = message
    }

    public var description: String { message }

    public static func badRequest(_ message: String) -> AppError { AppError(.badRequest, "bad_request", message) }
    public static func unknownContent(_ cid: Int64) -> AppError { AppError(.notFound, "unknown_cid", "no content with cid \(cid)") }
    public static func noJob(_ cid: Int64) -> AppError { AppError(.notFound, "no_job", "no job for cid \(cid)") }
    public static func unknownLevel(_ level: String) -> AppError {
        AppError(.notFound, "unknown_level", "level '\(level.prefix(64))' is not in the level table")
    }
    public static func invalidFilename(_ message: String) -> AppError { AppError(.unprocessable, "invalid_filename", message) }
    public static func noLevel(_ message: String) -> AppError { AppError(.unprocessable, "no_level", message) }
    public static func unavailable(_ message: String) -> AppError { AppError(.unavailable, "unavailable", message) }
    public static func conflict(_ code: String, _ message: String) -> AppError { AppError(.conflict, code, message) }
}
