import CSQLite
import Foundation

/// SQLite, the embedded default: one file, WAL journal, a busy timeout so that several processes
/// can share it.
public final class SQLiteDatabase: SQLDatabase, @unchecked Sendable {
    public let dialect = SQLDialect.sqlite
    public let location: String
    private var handle: OpaquePointer?

    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    public init(path: String, busyTimeoutMilliseconds: Int32 = 10_000) throws {
        location = "sqlite \(path)"
        var db: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let status = sqlite3_open_v2(path, &db, flags, nil)
        guard status == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            sqlite3_close(db)
            throw SQLError(code: .unknownDatabase, location: location, message: "cannot open the database file: \(message)", serverCode: String(status))
        }
        handle = db
        sqlite3_busy_timeout(db, busyTimeoutMilliseconds)
        if path != ":memory:" { try executeScript("PRAGMA journal_mode=WAL") }
        try executeScript("PRAGMA foreign_keys=ON")
    }

    deinit { close() }

    public func close() {
        if let db = handle {
            sqlite3_close_v2(db)
            handle = nil
        }
    }

    @discardableResult
    public func execute(_ query: SQLQuery) throws -> Int {
        let db = try open()
        _ = try run(query, db: db)
        return Int(sqlite3_changes(db))
    }

    public func query(_ query: SQLQuery) throws -> [SQLRow] {
        try run(query, db: open())
    }

    public func executeScript(_ sql: String) throws {
        let db = try open()
        var errorMessage: UnsafeMutablePointer<CChar>?
        let status = sqlite3_exec(db, sql, nil, nil, &errorMessage)
        if status != SQLITE_OK {
            let message = errorMessage.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(db))
            sqlite3_free(errorMessage)
            throw error(status: status, message: message)
        }
    }

    // MARK: - sqlite3

    private func open() throws -> OpaquePointer {
        guard let db = handle else {
            throw SQLError(code: .connectionLost, location: location, message: "the database is closed")
        }
        return db
    }

    private func run(_ query: SQLQuery, db: OpaquePointer) throws -> [SQLRow] {
        let (sql, binds) = query.render(for: dialect)
        var statement: OpaquePointer?
        let prepared = sqlite3_prepare_v2(db, sql, -1, &statement, nil)
        guard prepared == SQLITE_OK, let statement else {
            throw error(status: prepared, message: String(cString: sqlite3_errmsg(db)))
        }
        defer { sqlite3_finalize(statement) }
        for (offset, value) in binds.enumerated() {
            let index = Int32(offset + 1)
            let status: Int32
            switch value {
            case .null: status = sqlite3_bind_null(statement, index)
            case .int(let v): status = sqlite3_bind_int64(statement, index, v)
            case .double(let v): status = sqlite3_bind_double(statement, index, v)
            case .text(let v):
                // With its byte length: a NUL inside the text must not end it.
                let bytes = Array(v.utf8) + [0]
                status = bytes.withUnsafeBufferPointer { buffer in
                    buffer.withMemoryRebound(to: CChar.self) {
                        sqlite3_bind_text(statement, index, $0.baseAddress, Int32(bytes.count - 1), Self.transient)
                    }
                }
            }
            if status != SQLITE_OK { throw error(status: status, message: String(cString: sqlite3_errmsg(db))) }
        }
        let columnCount = Int(sqlite3_column_count(statement))
        let columns = (0..<columnCount).map { String(cString: sqlite3_column_name(statement, Int32($0))) }
        var rows: [SQLRow] = []
        while true {
            let step = sqlite3_step(statement)
            if step == SQLITE_DONE { break }
            guard step == SQLITE_ROW else { throw error(status: step, message: String(cString: sqlite3_errmsg(db))) }
            var values: [SQLValue] = []
            values.reserveCapacity(columnCount)
            for column in 0..<Int32(columnCount) {
                switch sqlite3_column_type(statement, column) {
                case SQLITE_INTEGER: values.append(.int(sqlite3_column_int64(statement, column)))
                case SQLITE_FLOAT: values.append(.double(sqlite3_column_double(statement, column)))
                case SQLITE_NULL: values.append(.null)
                default:
                    let count = Int(sqlite3_column_bytes(statement, column))
                    let text = sqlite3_column_text(statement, column).map {
                        String(decoding: UnsafeBufferPointer(start: $0, count: count), as: UTF8.self)
                    } ?? ""
                    values.append(.text(text))
                }
            }
            rows.append(SQLRow(columns: columns, values: values))
        }
        return rows
    }

    private func error(status: Int32, message: String) -> SQLError {
        let primary = status & 0xff
        let code: SQLError.Code
        switch primary {
        case SQLITE_CONSTRAINT: code = .constraintViolation
        case SQLITE_ERROR: code = .badSQL
        case SQLITE_CANTOPEN, SQLITE_NOTADB: code = .unknownDatabase
        default: code = .other
        }
        return SQLError(code: code, location: location, message: message, serverCode: String(status))
    }
}
