/// A database failure. The description says what went wrong and where (backend, host) but never a
/// password, and never the statement's parameters.
public struct SQLError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Code: String, Sendable {
        /// Nothing listens at the address, or the host cannot be reached.
        case connectionRefused = "connection refused"
        /// The server refused the user or password.
        case authenticationFailed = "authentication failed"
        /// The connection broke while in use, or was given up: the server gave no answer in time
        /// (`SessionLimits.answerTimeout`).
        case connectionLost = "connection lost"
        /// The server ended the statement at its time limit (`SessionLimits.answerTimeout`: a
        /// server too busy or a lock too long held); the session lives on.
        case timedOut = "timed out"
        /// The database named in the URL does not exist, or a file cannot be opened.
        case unknownDatabase = "unknown database"
        /// A SQLite database file is not there (and the caller may not create it).
        case databaseFileMissing = "no database file"
        /// The operating system or the server refused access: a file or directory the user may
        /// not read or write (`EACCES`), a read-only filesystem (`EROFS`), a read-only connection.
        case permissionDenied = "permission denied"
        /// A table the statement needs does not exist: the database was never migrated.
        case schemaMissing = "schema missing"
        /// The statement is not valid SQL, or names a column that does not exist.
        case badSQL = "bad SQL"
        /// A unique, primary-key, foreign-key, check or NOT NULL constraint refused the change.
        case constraintViolation = "constraint violation"
        /// A content's filename already belongs to another content.
        case duplicateFilename = "duplicate filename"
        /// An edit of the level table would leave it with gaps or overlaps.
        case invalidLevelTable = "invalid level table"
        /// A level policy outside its limits (a percentage above 100, a low water above the high).
        case invalidPolicy = "invalid level policy"
        /// A column could not be read as the type asked for.
        case decoding
        /// A migration file is missing or malformed, or a migration's precondition does not hold.
        case migration
        /// Any other database error.
        case other = "database error"
    }

    public var code: Code
    /// `postgres 127.0.0.1:5432/db`, `mysql …` or `sqlite path`, when known.
    public var location: String?
    public var message: String
    /// The SQLSTATE (PostgreSQL) or error number (MySQL, SQLite), when the server gave one.
    public var serverCode: String?
    /// The statement failed for the session's sake, not its own (a prepared statement the session
    /// lost): the transaction it aborted may be run again (`SQLDatabase.transaction`).
    public var transactionMayBeRetried = false

    public init(code: Code, location: String? = nil, message: String, serverCode: String? = nil) {
        self.code = code
        self.location = location
        self.message = message
        self.serverCode = serverCode
    }

    /// `the database <location> has no table '<table>': run `relocator migrate``.
    public static func schemaMissing(table: String, location: String?, serverCode: String?) -> SQLError {
        SQLError(code: .schemaMissing, location: location,
                 message: "the database \(location ?? "") has no table '\(table)': run `relocator migrate`", serverCode: serverCode)
    }

    /// One line. Codes whose message says it all in an operator's words are not repeated in it:
    /// `sqlite ./x.sqlite: no database file here; run `relocator migrate` to create it`.
    public var description: String {
        let place = location.map { "\($0): " } ?? ""
        let server = serverCode.map { " [\($0)]" } ?? ""
        switch code {
        case .schemaMissing:
            return message
        case .databaseFileMissing, .permissionDenied, .duplicateFilename, .invalidLevelTable, .invalidPolicy:
            return "\(place)\(message)"
        default:
            return "\(place)\(code.rawValue): \(message)\(server)"
        }
    }

    /// True for failures that may go away by themselves (the server is down or restarting).
    public var isTransient: Bool { code == .connectionRefused || code == .connectionLost || code == .timedOut }
}
