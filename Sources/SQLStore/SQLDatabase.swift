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
    /// Runs `body` in a transaction: commits when it returns, rolls back when it throws.
    @discardableResult
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        try executeScript(dialect == .sqlite ? "BEGIN IMMEDIATE" : "BEGIN")
        let result: T
        do {
            result = try body()
        } catch {
            do {
                try executeScript("ROLLBACK")
            } catch let rollbackError {
                throw SQLError(code: .other, location: location,
                               message: "rollback failed (\(rollbackError)) after: \(error)")
            }
            throw error
        }
        try executeScript("COMMIT")
        return result
    }
}

/// Opens the database a URL names.
public func openDatabase(_ url: DatabaseURL) throws -> any SQLDatabase {
    switch url {
    case .postgres(let server): return try PostgresDatabase(server)
    case .mysql(let server): return try MySQLDatabase(server)
    case .sqlite(let path): return try SQLiteDatabase(path: path)
    }
}
