import CLibPQ
import Foundation
import RelocatorCore

/// PostgreSQL through libpq, with text parameters. A statement run through `execute` or `query`
/// is prepared on the session (`PQprepare`) and run by name after that (`PQexecPrepared`): the
/// server parses and plans it once per connection rather than on every call, which halves its
/// cost for a lookup by key. It is prepared the first time it runs outside a transaction (one
/// first run inside a transaction is prepared at the session's next call outside one); one of
/// more than `PreparedStatements.mostParameters` parameters never is. Scripts (`executeScript`:
/// transaction control, migrations) go through `PQexecParams` as they come.
public final class PostgresDatabase: SQLDatabase, @unchecked Sendable {
    public let dialect = SQLDialect.postgres
    public let location: String
    private var connection: OpaquePointer?
    private let server: DatabaseURL.ServerDatabase
    /// The statements prepared on this session, by their SQL text.
    private var prepared = PreparedStatements()
    /// How long a statement waits for the server's answer (nil: for ever). One that waits longer
    /// fails as a lost connection, and the session is given up (`abandoned`).
    private let answerTimeout: Duration?
    /// The session was given up mid-statement (no answer in time): its socket is shut, and the next
    /// call connects again.
    private var abandoned = false
    /// The settings set on every session of this connection (`SessionLimits`).
    private var limits: [(name: String, value: String)] = []

    /// Connects. With `.readOnly` access the session refuses every write
    /// (`default_transaction_read_only`); `.create` is `.readWrite` (a server database is made by
    /// its administrator, never by Relocator). A statement waits for its answer at most
    /// `answerTimeout` (`SessionLimits.answerTimeout`), except with `.create` access (`relocator
    /// migrate`, whose index builds may take long): for ever.
    public init(_ server: DatabaseURL.ServerDatabase, access: DatabaseAccess = .readWrite, connectTimeoutSeconds: Int = 5,
                answerTimeout: Duration? = SessionLimits.answerTimeout) throws {
        self.server = server
        self.answerTimeout = access == .create ? nil : answerTimeout
        self.location = "postgres \(server.host):\(server.port)/\(server.database)"
        var params: [(String, String)] = [
            ("host", server.host), ("port", String(server.port)), ("dbname", server.database),
            ("connect_timeout", String(connectTimeoutSeconds)), ("application_name", "relocator"),
            ("client_encoding", "UTF8"),
        ]
        if let user = server.user { params.append(("user", user)) }
        if let password = server.password { params.append(("password", password)) }
        var options = server.options
        if access == .readOnly {
            // Server settings travel in libpq's `options`, after any the URL gave.
            options["options"] = [options["options"], "-c default_transaction_read_only=on"].compactMap { $0 }.joined(separator: " ")
        }
        for (key, value) in options.sorted(by: { $0.key < $1.key }) { params.append((key, value)) }
        connection = Self.connect(params)
        guard let conn = connection else {
            throw SQLError(code: .other, location: location, message: "libpq could not allocate a connection")
        }
        if PQstatus(conn) != CONNECTION_OK {
            let message = Self.message(PQerrorMessage(conn))
            PQfinish(conn)
            connection = nil
            throw SQLError(code: Self.classifyConnectFailure(message), location: location, message: message)
        }
        PQsetNoticeProcessor(conn, { _, _ in }, nil)
        // The session's limits (`SessionLimits`), set once connected rather than in the startup
        // packet (a pooler such as PgBouncer may refuse settings there); one the URL's `options`
        // sets is left as it says. The server ends a statement past the answer's limit itself
        // (its client's wait is a backstop a little longer); `migrate` has neither.
        var settings = SessionLimits.postgresSettings
        // (0: none — set all the same for `migrate`, so that a role's default or a setting a
        // pooler's connection kept from another client cannot end its index builds.)
        settings.append(("statement_timeout", self.answerTimeout.map { "\(max(1, $0.milliseconds))ms" } ?? "0"))
        limits = settings.filter { !(options["options"] ?? "").contains($0.name) }
        try applyLimits()
    }

    /// Sets the session's limits (again, on a new session after a reset).
    private func applyLimits() throws {
        for (name, value) in limits { try executeScript("SET \(name) = '\(value)'") }
    }

    deinit { close() }

    public func close() {
        if let conn = connection {
            PQfinish(conn)
            connection = nil
        }
    }

    @discardableResult
    public func execute(_ query: SQLQuery) throws -> Int {
        let result = try run(query, prepare: true)
        defer { PQclear(result) }
        return Int(String(cString: PQcmdTuples(result))) ?? 0
    }

    public func query(_ query: SQLQuery) throws -> [SQLRow] {
        let result = try run(query, prepare: true)
        defer { PQclear(result) }
        let columnCount = Int(PQnfields(result))
        let columns = (0..<columnCount).map { String(cString: PQfname(result, Int32($0))) }
        let types = (0..<columnCount).map { PQftype(result, Int32($0)) }
        var rows: [SQLRow] = []
        let rowCount = Int(PQntuples(result))
        rows.reserveCapacity(rowCount)
        for row in 0..<rowCount {
            var values: [SQLValue] = []
            values.reserveCapacity(columnCount)
            for column in 0..<columnCount {
                if PQgetisnull(result, Int32(row), Int32(column)) == 1 {
                    values.append(.null)
                    continue
                }
                let text = String(cString: PQgetvalue(result, Int32(row), Int32(column)))
                values.append(Self.decode(text, oid: types[column]))
            }
            rows.append(SQLRow(columns: columns, values: values))
        }
        return rows
    }

    public func executeScript(_ sql: String) throws {
        let result = try run(SQLQuery(unsafeSQL: sql), prepare: false)
        PQclear(result)
    }

    // MARK: - libpq

    /// Runs a statement, by the name it was prepared under when `prepare` and the session can.
    /// Parameters travel as text; the server infers their types, once per session for a prepared
    /// statement (which keeps them: a column whose type changes while the session lasts keeps
    /// the parameter's old type, whose range then still bounds the values it takes).
    private func run(_ query: SQLQuery, prepare: Bool) throws -> OpaquePointer {
        let conn = try liveConnection()
        let (sql, binds) = query.render(for: dialect)
        let texts: [String?] = binds.map { value in
            switch value {
            case .null: return nil
            case .int(let v): return String(v)
            case .double(let v): return String(v)
            case .text(let v): return v
            }
        }
        let idle = PQtransactionStatus(conn) == PQTRANS_IDLE
        // What was asked for inside a transaction is prepared now, outside any (a PREPARE that
        // fails aborts the transaction it is in).
        if idle { try prepareWanted(on: conn) }
        let unprepared = { [self] in
            try check(exchange(on: conn) { Self.withCStrings(texts) { PQsendQueryParams(conn, sql, Int32($0.count), nil, $0.baseAddress, nil, nil, 0) } },
                      on: conn)
        }
        let statement = PreparedStatements.Statement(sql: sql, parameters: texts.count)
        guard prepare, let name = try preparedName(statement, idle: idle, on: conn) else { return try unprepared() }
        do {
            return try check(exchange(on: conn) { Self.withCStrings(texts) { PQsendQueryPrepared(conn, name, Int32($0.count), $0.baseAddress, nil, nil, 0) } },
                             on: conn)
        } catch var error as SQLError where PreparedStatements.isLost(error.serverCode) {
            // The session no longer has it (`DISCARD ALL`, a pooler that hands each transaction
            // another server session), or its plan no longer fits the table (a migration changed
            // the columns it returns): this session stops preparing. The statement runs again
            // unprepared at once when nothing was under way; in a transaction, which the failure
            // aborted, `transaction` runs the whole transaction again.
            prepared.disable()
            guard idle else {
                error.transactionMayBeRetried = true
                throw error
            }
            return try unprepared()
        }
    }

    /// The name `statement` is prepared under on this session; nil to run it unprepared: preparing
    /// is off or full, it has too many parameters, or it is new and a transaction is under way
    /// (it is then prepared at the next call outside one), or its PREPARE failed (the run shows
    /// why).
    private func preparedName(_ statement: PreparedStatements.Statement, idle: Bool, on conn: OpaquePointer) throws -> String? {
        switch prepared.lookup(statement) {
        case .unprepared: return nil
        case .prepared(let name): return name
        case .prepare(let name):
            guard idle else {
                prepared.want(statement, as: name)
                return nil
            }
            return try prepare(statement, as: name, on: conn) ? name : nil
        }
    }

    /// Prepares what was asked for inside transactions.
    private func prepareWanted(on conn: OpaquePointer) throws {
        for (statement, name) in prepared.takeWanted() { _ = try prepare(statement, as: name, on: conn) }
    }

    /// `PREPARE`s `statement` outside any transaction; true when the session has it under `name`
    /// (also when it had it already: a name is made of the text). Throws when the server gave no
    /// answer in time (the session is given up).
    private func prepare(_ statement: PreparedStatements.Statement, as name: String, on conn: OpaquePointer) throws -> Bool {
        guard let result = try exchange(on: conn, { PQsendPrepare(conn, name, statement.sql, Int32(statement.parameters), nil) }) else {
            return false
        }
        defer { PQclear(result) }
        let state = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
        guard PQresultStatus(result) == PGRES_COMMAND_OK || state == PreparedStatements.alreadyExists else {
            // Its runs show why (they go unprepared from now on, and it is not tried again).
            prepared.refuse(statement)
            return false
        }
        prepared.record(statement, as: name)
        return true
    }

    /// `result` when the server ran the statement; else the error it answered, classified (the
    /// result is freed).
    private func check(_ result: OpaquePointer?, on conn: OpaquePointer) throws -> OpaquePointer {
        guard let result else {
            throw SQLError(code: .connectionLost, location: location, message: Self.message(PQerrorMessage(conn)))
        }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
            return result
        default:
            let state = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
            let message = Self.message(PQresultErrorMessage(result))
            PQclear(result)
            if state == "42P01", let table = Self.missingTable(message) {
                throw SQLError.schemaMissing(table: table, location: location, serverCode: state)
            }
            let code: SQLError.Code = PQstatus(conn) == CONNECTION_BAD ? .connectionLost : Self.classify(sqlState: state)
            throw SQLError(code: code, location: location, message: message, serverCode: state)
        }
    }

    /// Sends a statement (`send`: a `PQsend…` call) and waits for its result: the last one, or
    /// the first error. Nil when it could not be sent or the connection broke (`PQerrorMessage`
    /// says why). Waits while the socket moves, and at most `answerTimeout` and a backstop
    /// (`SessionLimits.answerBackstop`) of silence: then the session is given up (its socket shut, so
    /// that the server ends it and its transaction as soon as it runs again) and the wait fails as
    /// a lost connection. A server stalled (a backend stopped, a VM paused) or a network that
    /// drops everything silently answers nothing, and without a limit the caller — a count's
    /// read, a commit — would wait for ever.
    private func exchange(on conn: OpaquePointer, _ send: () -> Int32) throws -> OpaquePointer? {
        guard let limit = answerTimeout else {
            // Blocking: libpq waits as long as it takes.
            guard send() == 1 else { return nil }
            return Self.lastResult(conn)
        }
        // The server ends a statement at `limit` itself (statement_timeout): this wait, which
        // starts again whenever the socket moves, ends only a session whose server or network
        // stalled — silent a little longer than that.
        let silence = limit + SessionLimits.answerBackstop
        var deadline = ContinuousClock.now + silence
        /// Waits until the socket is ready for `events` or the deadline passes (then the session
        /// is given up and the wait fails).
        func wait(_ events: Int32) throws {
            let left = deadline - .now
            guard left > .zero else {
                abandon(conn)
                throw SQLError(code: .connectionLost, location: location,
                               message: "no answer from the server for \(silence); the session was given up (the server or the network to it stalled)")
            }
            var ready = pollfd(fd: PQsocket(conn), events: Int16(events), revents: 0)
            let milliseconds = min(left.components.seconds, 3_600) * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1
            if poll(&ready, 1, Int32(milliseconds)) > 0 { deadline = .now + silence }
        }
        // Non-blocking, so that neither the sending (a server that reads nothing fills the
        // socket's buffer) nor the reading outlasts the deadline.
        guard PQsetnonblocking(conn, 1) == 0, send() == 1 else { return nil }
        // Sent whole (1: more to send; -1: the connection broke, which PQgetResult reports).
        while PQflush(conn) == 1 {
            try wait(POLLIN | POLLOUT)
            // (Input read while sending: the server may answer before it has read everything.)
            if PQconsumeInput(conn) == 0 { break }
        }
        var kept: OpaquePointer?
        while true {
            while PQisBusy(conn) == 1 {
                do {
                    try wait(POLLIN)
                } catch {
                    if let kept { PQclear(kept) }
                    throw error
                }
                // (A broken connection: PQgetResult then reports the error.)
                if PQconsumeInput(conn) == 0 { break }
            }
            guard let result = PQgetResult(conn) else { return kept }
            kept = Self.keep(kept, result)
        }
    }

    /// Every result of the statement sent, as `PQexec` gives them: the last one, or the first error.
    private static func lastResult(_ conn: OpaquePointer) -> OpaquePointer? {
        var kept: OpaquePointer?
        while let result = PQgetResult(conn) { kept = keep(kept, result) }
        return kept
    }

    /// Of the result kept so far and the next one, the one to keep (the other is freed).
    private static func keep(_ kept: OpaquePointer?, _ next: OpaquePointer) -> OpaquePointer {
        guard let kept else { return next }
        if PQresultStatus(kept) == PGRES_FATAL_ERROR {
            PQclear(next)
            return kept
        }
        PQclear(kept)
        return next
    }

    /// Gives the session up: its socket is shut both ways now, the next call connects again.
    private func abandon(_ conn: OpaquePointer) {
        let socket = PQsocket(conn)
        if socket >= 0 { _ = shutdown(socket, Int32(SHUT_RDWR)) }
        abandoned = true
    }

    /// The connection, re-established if the server dropped it, or the session was given up,
    /// since the last call.
    private func liveConnection() throws -> OpaquePointer {
        guard let conn = connection else {
            throw SQLError(code: .connectionLost, location: location, message: "the connection is closed")
        }
        if abandoned || PQstatus(conn) == CONNECTION_BAD {
            // A new session: nothing is prepared on it.
            prepared.forgetAll()
            abandoned = false
            PQreset(conn)
            if PQstatus(conn) != CONNECTION_OK {
                let message = Self.message(PQerrorMessage(conn))
                throw SQLError(code: Self.classifyConnectFailure(message), location: location, message: message)
            }
            // A new session has none of the old one's settings (without them it is given up).
            do {
                try applyLimits()
            } catch {
                abandoned = true
                throw error
            }
        }
        return conn
    }

    private static func connect(_ params: [(String, String)]) -> OpaquePointer? {
        withCStrings(params.map { $0.0 }) { keys in
            withCStrings(params.map { $0.1 }) { values in
                var keyArray = Array(keys) + [nil]
                var valueArray = Array(values) + [nil]
                return keyArray.withUnsafeMutableBufferPointer { k in
                    valueArray.withUnsafeMutableBufferPointer { v in
                        PQconnectdbParams(k.baseAddress, v.baseAddress, 0)
                    }
                }
            }
        }
    }

    /// Calls `body` with C strings for `strings` (NULL for nil), valid for the call only.
    private static func withCStrings<R>(_ strings: [String?], _ body: (UnsafeBufferPointer<UnsafePointer<CChar>?>) -> R) -> R {
        let copies: [UnsafeMutablePointer<CChar>?] = strings.map { $0.map { strdup($0)! } }
        defer { copies.forEach { free($0) } }
        let pointers = copies.map { UnsafePointer($0) }
        return pointers.withUnsafeBufferPointer(body)
    }

    private static func message(_ pointer: UnsafePointer<CChar>?) -> String {
        guard let pointer else { return "unknown error" }
        let lines = String(cString: pointer).split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        return lines.joined(separator: "; ")
    }

    static func classifyConnectFailure(_ message: String) -> SQLError.Code {
        let lower = message.lowercased()
        if lower.contains("password authentication failed") || lower.contains("no password supplied")
            || lower.contains("authentication failed") || lower.contains("role") && lower.contains("does not exist") {
            return .authenticationFailed
        }
        if lower.contains("database") && lower.contains("does not exist") { return .unknownDatabase }
        if lower.contains("connection refused") || lower.contains("could not connect") || lower.contains("timeout")
            || lower.contains("could not translate host name") || lower.contains("no route to host") {
            return .connectionRefused
        }
        // A server coming up (after a restart, a crash, a failover) refuses connections for a while.
        if lower.contains("the database system is starting up") || lower.contains("the database system is in recovery mode")
            || lower.contains("not yet accepting connections") {
            return .connectionRefused
        }
        if lower.contains("server closed the connection") || lower.contains("shutting down") { return .connectionLost }
        return .other
    }

    /// `contents` from `ERROR: relation "public.contents" does not exist; …`.
    static func missingTable(_ message: String) -> String? {
        guard let open = message.firstIndex(of: "\""),
              let close = message[message.index(after: open)...].firstIndex(of: "\"") else { return nil }
        let name = message[message.index(after: open)..<close]
        return String(name.split(separator: ".").last ?? name)
    }

    static func classify(sqlState: String?) -> SQLError.Code {
        guard let state = sqlState else { return .other }
        if state == "25006" || state == "42501" { return .permissionDenied }
        if state.hasPrefix("23") { return .constraintViolation }
        if state.hasPrefix("42") { return .badSQL }
        if state.hasPrefix("28") { return .authenticationFailed }
        if state.hasPrefix("08") || state.hasPrefix("57P") { return .connectionLost }
        // query_canceled: by statement_timeout (Relocator sends no cancel of its own).
        if state == "57014" { return .timedOut }
        if state == "3D000" { return .unknownDatabase }
        return .other
    }

    /// Text-format values by type OID: integers, floats and booleans become numbers.
    static func decode(_ text: String, oid: Oid) -> SQLValue {
        switch oid {
        case 20, 21, 23, 26: return Int64(text).map(SQLValue.int) ?? .text(text)
        case 700, 701, 1700: return Double(text).map(SQLValue.double) ?? .text(text)
        case 16: return .int(text == "t" ? 1 : 0)
        default: return .text(text)
        }
    }
}

/// The statements one PostgreSQL session has prepared, by SQL text and number of parameters.
/// Pure bookkeeping: the session is `PostgresDatabase`'s.
struct PreparedStatements {
    /// A session prepares at most this many statements; others run unprepared.
    static let most = 256
    /// Statements with more parameters run unprepared: the texts whose length follows a list's
    /// (`IN (?, ?, …)`) would otherwise fill the session with statements used once.
    static let mostParameters = 16
    /// `duplicate_prepared_statement`: the session has the name already. A name is a function of
    /// the text, so it names the same statement (a pooler may hand over a session
    /// another connection of ours prepared it on).
    static let alreadyExists = "42P05"

    struct Statement: Hashable {
        var sql: String
        /// How many parameters it takes (`$1`…).
        var parameters: Int
    }

    enum Use: Equatable {
        case prepared(String)
        case prepare(String)
        case unprepared
    }

    private(set) var names: [Statement: String] = [:]
    /// Asked for inside a transaction: prepared at the session's next call outside one.
    private(set) var wanted: [Statement: String] = [:]
    /// Those whose PREPARE failed on this session: not tried again.
    private(set) var refused: Set<Statement> = []
    private(set) var enabled = true

    func lookup(_ statement: Statement) -> Use {
        guard enabled, statement.parameters <= Self.mostParameters, !refused.contains(statement) else { return .unprepared }
        if let name = names[statement] { return .prepared(name) }
        let room = names.count + wanted.count + refused.count < Self.most
        return room || wanted[statement] != nil ? .prepare(Self.name(for: statement)) : .unprepared
    }

    mutating func refuse(_ statement: Statement) {
        refused.insert(statement)
    }

    mutating func record(_ statement: Statement, as name: String) {
        names[statement] = name
    }

    mutating func want(_ statement: Statement, as name: String) {
        wanted[statement] = name
    }

    mutating func takeWanted() -> [(Statement, String)] {
        defer { wanted.removeAll() }
        return enabled ? wanted.map { ($0.key, $0.value) } : []
    }

    /// The session lost what it prepared, or cannot be trusted with it: it prepares nothing more.
    mutating func disable() {
        enabled = false
        names.removeAll()
        wanted.removeAll()
        refused.removeAll()
    }

    /// A new session (the connection was re-established): nothing is prepared on it, and it
    /// prepares again (whatever made the old one stop).
    mutating func forgetAll() {
        names.removeAll()
        wanted.removeAll()
        refused.removeAll()
        enabled = true
    }

    /// Whether an error of a prepared statement's run says the session cannot run it by name:
    /// `invalid_sql_statement_name` (it is gone) or `feature_not_supported` (its plan no longer
    /// fits: "cached plan must not change result type").
    static func isLost(_ sqlState: String?) -> Bool {
        sqlState == "26000" || sqlState == "0A000"
    }

    /// `relocator_<FNV-1a 64 of the text, hex>_<its length in bytes>`: the same text always has
    /// the same name, and two texts one only by a 64-bit collision of equal lengths.
    static func name(for statement: Statement) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in statement.sql.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return "relocator_\(String(hash, radix: 16))_\(statement.sql.utf8.count)"
    }
}
