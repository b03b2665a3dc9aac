import RelocatorCore

/// A connection held by `SQLPool`.
public final class PooledDatabase: @unchecked Sendable {
    public let database: any SQLDatabase
    init(_ database: any SQLDatabase) { self.database = database }
}

/// A few database connections for async callers; each blocking libpq / Connector/C / SQLite call runs
/// on a Dispatch thread (see `BlockingPool`). A connection whose server went away is discarded and
/// a new one opened on the next call.
public final class SQLPool: Sendable {
    public let url: DatabaseURL
    private let pool: BlockingPool<PooledDatabase>

    /// Connections open with `access`: `.readWrite` by default, so a service never creates a
    /// database (a missing SQLite file says to run `relocator migrate`).
    public init(url: DatabaseURL, size: Int = 4, access: DatabaseAccess = .readWrite) {
        self.url = url
        let location = url.description
        pool = BlockingPool(
            size: size,
            make: { PooledDatabase(try openDatabase(url, access: access)) },
            close: { $0.database.close() },
            closedError: { SQLError(code: .connectionLost, location: location, message: "the connection pool is closed") }
        )
    }

    public func withDatabase<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) throws -> T) async throws -> T {
        // (A statement the server ended at its time limit leaves a live session: kept.)
        try await pool.withResource(isBroken: { ($0 as? SQLError).map { $0.isTransient && $0.code != .timedOut } ?? false }) { try body($0.database) }
    }

    public func close() { pool.close() }
}
