import CMariaDB
import Foundation
import RelocatorCore

/// MySQL and MariaDB through MariaDB Connector/C. Every statement with parameters goes through a
/// prepared statement (`mysql_stmt_*` with `MYSQL_BIND`).
public final class MySQLDatabase: SQLDatabase, @unchecked Sendable {
    public let dialect = SQLDialect.mysql
    public let location: String
    private var handle: UnsafeMutablePointer<MYSQL>?

    /// Connects. Transactions run at READ COMMITTED (each statement sees what committed before it,
    /// as on PostgreSQL: a commit that waited for a row lock then reads the rows the other commit
    /// wrote). With `.readOnly` access the session refuses every write; `.create` is `.readWrite`.
    /// A statement waits for its answer at most `answerTimeout` (`SessionLimits.answerTimeout`:
    /// the connector's read and write timeouts, whole seconds), except with `.create` access
    /// (`relocator migrate`): for ever. One that waits longer fails as a lost connection.
    public init(_ server: DatabaseURL.ServerDatabase, access: DatabaseAccess = .readWrite, connectTimeoutSeconds: UInt32 = 5,
                answerTimeout: Duration? = SessionLimits.answerTimeout) throws {
        location = "mysql \(server.host):\(server.port)/\(server.database)"
        guard let mysql = mysql_init(nil) else {
            throw SQLError(code: .other, location: location, message: "cannot allocate a connection")
        }
        var timeout = connectTimeoutSeconds
        mysql_options(mysql, MYSQL_OPT_CONNECT_TIMEOUT, &timeout)
        mysql_options(mysql, MYSQL_SET_CHARSET_NAME, "utf8mb4")
        if access != .create, let answerTimeout {
            var answer = UInt32(clamping: max(1, (answerTimeout + SessionLimits.answerBackstop).components.seconds))
            mysql_options(mysql, MYSQL_OPT_READ_TIMEOUT, &answer)
            mysql_options(mysql, MYSQL_OPT_WRITE_TIMEOUT, &answer)
        }
        let connected = mysql_real_connect(mysql, server.host, server.user, server.password, server.database,
                                           UInt32(server.port), nil, 0)
        if connected == nil {
            let error = Self.error(mysql, location: location)
            mysql_close(mysql)
            throw error
        }
        handle = mysql
        try executeScript("SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'")
        try executeScript("SET time_zone = '+00:00'")
        try executeScript("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED" + (access == .readOnly ? ", READ ONLY" : ""))
        try executeScript("SET SESSION innodb_lock_wait_timeout = \(SessionLimits.lockWaitSeconds)")
        // MySQL has no such limit; MariaDB has.
        if let version = mysql_get_server_info(mysql), String(cString: version).contains("MariaDB") {
            try executeScript("SET SESSION idle_transaction_timeout = \(SessionLimits.idleInTransactionSeconds)")
            // (0: none, also for `migrate`, whatever the server's default.)
            let limit = access == .create ? nil : answerTimeout
            try executeScript("SET SESSION max_statement_time = \(limit.map { Double(max(1, $0.milliseconds)) / 1000 } ?? 0)")
        }
    }

    deinit { close() }

    public func close() {
        if let mysql = handle {
            mysql_close(mysql)
            handle = nil
        }
    }

    @discardableResult
    public func execute(_ query: SQLQuery) throws -> Int {
        var affected = 0
        _ = try run(query) { affected = $0 }
        return affected
    }

    public func query(_ query: SQLQuery) throws -> [SQLRow] {
        try run(query) { _ in }
    }

    public func executeScript(_ sql: String) throws {
        let mysql = try open()
        let bytes = Array(sql.utf8)
        if mysql_real_query(mysql, bytes.map { CChar(bitPattern: $0) }, UInt(bytes.count)) != 0 {
            throw Self.error(mysql, location: location)
        }
        // Drain a result set, if the statement had one.
        if let result = mysql_store_result(mysql) { mysql_free_result(result) }
    }

    // MARK: - Connector/C

    private func open() throws -> UnsafeMutablePointer<MYSQL> {
        guard let mysql = handle else {
            throw SQLError(code: .connectionLost, location: location, message: "the connection is closed")
        }
        return mysql
    }

    private func run(_ query: SQLQuery, affected: (Int) -> Void) throws -> [SQLRow] {
        let mysql = try open()
        let (sql, binds) = query.render(for: dialect)
        guard let statement = mysql_stmt_init(mysql) else { throw Self.error(mysql, location: location) }
        defer { mysql_stmt_close(statement) }
        let bytes = Array(sql.utf8)
        if mysql_stmt_prepare(statement, bytes.map { CChar(bitPattern: $0) }, UInt(bytes.count)) != 0 {
            throw statementError(statement)
        }
        guard Int(mysql_stmt_param_count(statement)) == binds.count else {
            throw SQLError(code: .badSQL, location: location,
                           message: "the statement has \(mysql_stmt_param_count(statement)) parameters but \(binds.count) values were given")
        }

        // Parameter buffers live until the statement has run.
        var buffers: [UnsafeMutableRawPointer] = []
        defer { buffers.forEach { $0.deallocate() } }
        var params = [MYSQL_BIND](repeating: MYSQL_BIND(), count: binds.count)
        for (index, value) in binds.enumerated() {
            switch value {
            case .null:
                params[index].buffer_type = MYSQL_TYPE_NULL
            case .int(let v):
                let buffer = UnsafeMutableRawPointer.allocate(byteCount: 8, alignment: 8)
                buffer.storeBytes(of: v, as: Int64.self)
                buffers.append(buffer)
                params[index].buffer_type = MYSQL_TYPE_LONGLONG
                params[index].buffer = buffer
            case .double(let v):
                let buffer = UnsafeMutableRawPointer.allocate(byteCount: 8, alignment: 8)
                buffer.storeBytes(of: v, as: Double.self)
                buffers.append(buffer)
                params[index].buffer_type = MYSQL_TYPE_DOUBLE
                params[index].buffer = buffer
            case .text(let v):
                let utf8 = Array(v.utf8)
                let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(utf8.count, 1), alignment: 1)
                utf8.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress ?? UnsafeRawPointer(buffer), byteCount: utf8.count) }
                buffers.append(buffer)
                params[index].buffer_type = MYSQL_TYPE_STRING
                params[index].buffer = buffer
                params[index].buffer_length = UInt(utf8.count)
                params[index].length_value = UInt(utf8.count)
            }
        }
        if !binds.isEmpty, mysql_stmt_bind_param(statement, &params) != 0 { throw statementError(statement) }
        if mysql_stmt_execute(statement) != 0 { throw statementError(statement) }

        guard let metadata = mysql_stmt_result_metadata(statement) else {
            affected(Int(mysql_stmt_affected_rows(statement)))
            return []
        }
        defer { mysql_free_result(metadata) }
        let columnCount = Int(mysql_num_fields(metadata))
        let fields = mysql_fetch_fields(metadata)!
        let columns = (0..<columnCount).map { String(cString: fields[$0].name) }
        let types = (0..<columnCount).map { fields[$0].type }

        // Numbers are fetched into 8-byte buffers; text columns are bound with no buffer: fetch
        // reports each length, then fetch_column reads the bytes.
        var lengths = [UInt](repeating: 0, count: columnCount)
        var nulls = [my_bool](repeating: 0, count: columnCount)
        let numbers = UnsafeMutableRawPointer.allocate(byteCount: 8 * max(columnCount, 1), alignment: 8)
        defer { numbers.deallocate() }
        let kinds = types.map(Self.kind)
        var results = [MYSQL_BIND](repeating: MYSQL_BIND(), count: columnCount)
        var rows: [SQLRow] = []
        try lengths.withUnsafeMutableBufferPointer { lengthPointer in
            try nulls.withUnsafeMutableBufferPointer { nullPointer in
                for column in 0..<columnCount {
                    switch kinds[column] {
                    case .integer:
                        results[column].buffer_type = MYSQL_TYPE_LONGLONG
                        results[column].buffer = numbers + 8 * column
                        results[column].buffer_length = 8
                    case .double:
                        results[column].buffer_type = MYSQL_TYPE_DOUBLE
                        results[column].buffer = numbers + 8 * column
                        results[column].buffer_length = 8
                    case .text:
                        results[column].buffer_type = MYSQL_TYPE_STRING
                    }
                    results[column].length = lengthPointer.baseAddress! + column
                    results[column].is_null = nullPointer.baseAddress! + column
                }
                if columnCount > 0, mysql_stmt_bind_result(statement, &results) != 0 { throw statementError(statement) }
                while true {
                    let status = mysql_stmt_fetch(statement)
                    if status == MYSQL_NO_DATA { break }
                    if status == 1 { throw statementError(statement) }
                    var values: [SQLValue] = []
                    values.reserveCapacity(columnCount)
                    for column in 0..<columnCount {
                        if nullPointer[column] != 0 {
                            values.append(.null)
                            continue
                        }
                        switch kinds[column] {
                        case .integer:
                            values.append(.int(numbers.load(fromByteOffset: 8 * column, as: Int64.self)))
                        case .double:
                            values.append(.double(numbers.load(fromByteOffset: 8 * column, as: Double.self)))
                        case .text:
                            values.append(.text(try fetchText(statement, column: column, length: Int(lengthPointer[column]))))
                        }
                    }
                    rows.append(SQLRow(columns: columns, values: values))
                }
            }
        }
        return rows
    }

    private enum ColumnKind { case integer, double, text }

    private static func kind(_ type: enum_field_types) -> ColumnKind {
        switch type {
        case MYSQL_TYPE_TINY, MYSQL_TYPE_SHORT, MYSQL_TYPE_LONG, MYSQL_TYPE_LONGLONG, MYSQL_TYPE_INT24, MYSQL_TYPE_YEAR:
            return .integer
        case MYSQL_TYPE_FLOAT, MYSQL_TYPE_DOUBLE:
            return .double
        default:
            // DECIMAL arrives as text and stays text: no precision is lost.
            return .text
        }
    }

    private func fetchText(_ statement: UnsafeMutablePointer<MYSQL_STMT>, column: Int, length: Int) throws -> String {
        guard length > 0 else { return "" }
        var bytes = [UInt8](repeating: 0, count: length)
        var fetched: UInt = 0
        let status = bytes.withUnsafeMutableBytes { raw -> Int32 in
            withUnsafeMutablePointer(to: &fetched) { fetchedPointer in
                var single = MYSQL_BIND()
                single.buffer_type = MYSQL_TYPE_STRING
                single.buffer = raw.baseAddress
                single.buffer_length = UInt(length)
                single.length = fetchedPointer
                return mysql_stmt_fetch_column(statement, &single, UInt32(column), 0)
            }
        }
        if status != 0 { throw statementError(statement) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The statement's error, or the connection's when the statement has none (an error the
    /// server sends among the rows, such as `max_statement_time`'s, is the connection's).
    private func statementError(_ statement: UnsafeMutablePointer<MYSQL_STMT>) -> SQLError {
        let number = mysql_stmt_errno(statement)
        if number == 0, let mysql = handle, mysql_errno(mysql) != 0 { return Self.error(mysql, location: location) }
        return Self.error(number: number, message: String(cString: mysql_stmt_error(statement)), location: location)
    }

    private static func error(_ mysql: UnsafeMutablePointer<MYSQL>, location: String) -> SQLError {
        error(number: mysql_errno(mysql), message: String(cString: mysql_error(mysql)), location: location)
    }

    static func error(number: UInt32, message: String, location: String) -> SQLError {
        if number == 1146, let table = missingTable(message) {
            return SQLError.schemaMissing(table: table, location: location, serverCode: String(number))
        }
        return SQLError(code: classify(number), location: location, message: message, serverCode: String(number))
    }

    /// `contents` from `Table 'media.contents' doesn't exist`.
    static func missingTable(_ message: String) -> String? {
        guard let open = message.firstIndex(of: "'"),
              let close = message[message.index(after: open)...].firstIndex(of: "'") else { return nil }
        let name = message[message.index(after: open)..<close]
        return String(name.split(separator: ".").last ?? name)
    }

    static func classify(_ number: UInt32) -> SQLError.Code {
        switch number {
        case 2002, 2003, 2005: return .connectionRefused
        case 2006, 2013, 2055, 1927, 1053: return .connectionLost
        // max_statement_time (MariaDB), max_execution_time (MySQL).
        case 1969, 3024: return .timedOut
        case 1045, 1044, 1698: return .authenticationFailed
        case 1049: return .unknownDatabase
        case 1062, 1048, 1451, 1452, 1364, 4025: return .constraintViolation
        case 1142, 1290, 1792: return .permissionDenied
        case 1064, 1146, 1054, 1149: return .badSQL
        default: return .other
        }
    }
}
