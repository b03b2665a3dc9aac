import RelocatorCore

/// One connection to a SQL database. Calls block: use it from one thread at a time and never from
/// an event loop.
public protocol SQLDatabase: AnyObject {
    var dialect: SQLDialect { get }
    /// Where the database is (`postgres 127.0.0.1:5432/db`), without credentials.
    var location: String { get }

    /// Runs a statement and returns the number of rows it changed.
    @discardableResult
    func execute(_ query: SQLQuery) throws -> Int
    /// Runs a statement and returns its rows.
    func query(_ query: SQLQuery) throws -> [SQLRow]
    /// Runs one statement of SQL text without parameters (migrations, transaction control).
    func executeScript(_ sql: String) throws
    func close()
}

extension SQLDatabase {
    /// Runs `body` in a transaction: commits when it returns, rolls back when it throws. A
    /// transaction that failed for the session's sake (`SQLError.transactionMayBeRetried`) is run
    /// once more: `body` may run twice, and does nothing but SQL.
    @discardableResult
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        do {
            return try transactionOnce(body)
        } catch let error as SQLError where error.transactionMayBeRetried {
            return try transactionOnce(body)
        }
    }

    private func transactionOnce<T>(_ body: () throws -> T) throws -> T {
        try executeScript(dialect == .sqlite ? "BEGIN IMMEDIATE" : "BEGIN")
        let result: T
        do {
            result = try body()
        } catch {
            // A session lost, or given up (no answer in time), has no transaction left here: the
            // server rolls it back as it ends the session. A ROLLBACK would only connect again.
            if let lost = error as? SQLError, lost.code == .connectionLost { throw error }
            do {
                try executeScript("ROLLBACK")
            } catch let rollbackError {
                // The session went meanwhile: the same, and the first error says why.
                if let lost = rollbackError as? SQLError, lost.isTransient { throw error }
                throw SQLError(code: .other, location: location,
                               message: "rollback failed (\(rollbackError)) after: \(error)")
            }
            throw error
        }
        try executeScript("COMMIT")
        return result
    }
}

/// What a command may do to its database.
public enum DatabaseAccess: String, Sendable, CaseIterable {
    /// Read only: nothing is created or written (`status`, `levels`, `relocations`, `/readyz`).
    /// PostgreSQL and MariaDB sessions are read-only; SQLite opens the file read-only and never
    /// switches it to WAL.
    case readOnly
    /// Read and write an existing database: a missing SQLite file is an error, never created.
    case readWrite
    /// Read and write, creating a missing SQLite file (`relocator migrate` only).
    case create
}

/// Opens the database a URL names, for what the caller will do with it.
public func openDatabase(_ url: DatabaseURL, access: DatabaseAccess) throws -> any SQLDatabase {
    switch url {
    case .postgres(let server): return try PostgresDatabase(server, access: access)
    case .mysql(let server): return try MySQLDatabase(server, access: access)
    case .sqlite(let path): return try SQLiteDatabase(path: path, access: access)
    }
}

/// Opens the database a URL names with `.create` access, as every command did before access modes
/// existed. Kept only until each caller passes its mode: read-only commands `.readOnly`, the
/// API, worker and committer `.readWrite`, `migrate` `.create` (or `Migrator.migrate(_:directory:)`).
public func openDatabase(_ url: DatabaseURL) throws -> any SQLDatabase {
    try openDatabase(url, access: .create)
}

extension SQLDialect {
    /// The dialect of the database a URL names.
    public init(_ url: DatabaseURL) {
        switch url {
        case .postgres: self = .postgres
        case .mysql: self = .mysql
        case .sqlite: self = .sqlite
        }
    }
}
