import Foundation
import RelocatorCore
import SQLStore
import Synchronization
import Testing
import TestSupport

/// A statement runs at most `SessionLimits.answerTimeout`: the server ends one that runs longer
/// (`SQLError.Code.timedOut`; the session lives on), and the client gives up a session whose
/// server has sent nothing for that long and `answerBackstop` more — a backend stopped, a VM
/// paused, a network that silently drops everything, which a count's read or a commit waited on
/// for ever. The statement then fails as a lost connection, and the same session object answers
/// the next statement on a new connection, with the same limits. `relocator migrate` (`.create`)
/// has no limit.
@Suite struct AnswerTimeoutTests {
    static let limit: Duration = .seconds(1)

    /// Runs `body` on a thread of its own; its result once it ends, or nil if it has not ended
    /// within `within`.
    static func ended<T: Sendable>(within: Duration, _ body: @escaping @Sendable () throws -> T) -> Result<T, any Error>? {
        let outcome = Mutex<Result<T, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            let result = Result { try body() }
            outcome.withLock { $0 = result }
            done.signal()
        }
        guard done.wait(timeout: .now() + .milliseconds(Int(within.components.seconds) * 1000)) == .success else { return nil }
        return outcome.withLock { $0 }
    }

    /// A PostgreSQL session under the test's limit, and the pid of its backend (to stop it).
    static func session(_ test: TestDatabase) throws -> (database: PostgresDatabase, backend: pid_t) {
        guard case .postgres(let server) = test.url else { throw SQLError(code: .other, message: "not a PostgreSQL database") }
        let database = try PostgresDatabase(server, access: .readWrite, answerTimeout: limit)
        guard case .int(let backend)? = try database.query(SQLQuery(unsafeSQL: "SELECT pg_backend_pid()")).first?.values.first,
              let pid = pid_t(exactly: backend), pid > 0 else {
            database.close()
            throw SQLError(code: .other, message: "no backend pid")
        }
        return (database, pid)
    }

    /// `body` with a session of a new PostgreSQL database whose backend is stopped (SIGSTOP), and
    /// the backend's pid. However `body` ends, the backend runs again (it then finds its socket
    /// shut, and ends), the session is closed and the database dropped.
    static func withStoppedBackend(_ body: (PostgresDatabase, pid_t) throws -> Void) throws {
        let test = try TestDatabase(.postgres)
        defer { test.drop() }
        let (database, pid) = try session(test)
        defer { database.close() }
        #expect(kill(pid, SIGSTOP) == 0)
        defer { kill(pid, SIGCONT) }
        try body(database, pid)
    }

    /// The PostgreSQL backend of the session is stopped (SIGSTOP) while the statement runs.
    @Test func aStatementToAStoppedPostgresBackendFailsWithinTheLimitAndTheSessionConnectsAgain() throws {
        try Self.withStoppedBackend { database, pid in
            let started = ContinuousClock.now
            let outcome = Self.ended(within: Self.limit * 20) { try database.query(SQLQuery(unsafeSQL: "SELECT 1")) }
            let result = try #require(outcome, "the statement to a stopped backend did not end")
            // Silent for the limit and the backstop (nothing came: the wait never started again).
            #expect(ContinuousClock.now - started >= Self.limit + SessionLimits.answerBackstop)
            #expect(throws: SQLError.self) { try result.get() }
            if case .failure(let error as SQLError) = result {
                #expect(error.code == .connectionLost && error.isTransient && error.message.contains("no answer"), "\(error)")
            }
            kill(pid, SIGCONT)
            #expect(try database.query(SQLQuery(unsafeSQL: "SELECT 2 AS n")).first?.values.first == .int(2))
            // The new session has the limits the first one had.
            #expect(try database.query(SQLQuery(unsafeSQL: "SHOW lock_timeout")).first?.values.first == .text("\(SessionLimits.lockWaitSeconds)s"))
            #expect(try database.query(SQLQuery(unsafeSQL: "SHOW statement_timeout")).first?.values.first == .text("1s"))
        }
    }

    /// Inside a transaction: the session given up has no transaction left to roll back (the
    /// server ends it), and the error stays a lost connection — transient, so the pool drops the
    /// session and the API answers 503 — not a failed rollback.
    @Test func aStatementGivenUpInsideATransactionFailsAsALostConnection() throws {
        let test = try TestDatabase(.postgres)
        defer { test.drop() }
        let (database, pid) = try Self.session(test)
        defer { database.close() }
        defer { kill(pid, SIGCONT) }
        let outcome = Self.ended(within: Self.limit * 20) {
            try database.transaction {
                _ = try database.query(SQLQuery(unsafeSQL: "SELECT 1"))
                kill(pid, SIGSTOP)
                return try database.query(SQLQuery(unsafeSQL: "SELECT 2"))
            }
        }
        let result = try #require(outcome, "the transaction did not end")
        if case .failure(let error as SQLError) = result {
            #expect(error.code == .connectionLost && error.isTransient, "\(error)")
        } else {
            Issue.record("the transaction did not fail: \(result)")
        }
    }

    /// A statement too large for the socket's buffers, to a stopped backend: its sending is
    /// bounded by the same limit (a blocking send waited for ever once the buffers were full).
    @Test func aLargeStatementToAStoppedPostgresBackendFailsWithinTheLimit() throws {
        try Self.withStoppedBackend { database, _ in
            let large = String(repeating: "x", count: 64 << 20)
            let outcome = Self.ended(within: Self.limit * 20) { try database.query("SELECT length(\(large)) AS n") }
            let result = try #require(outcome, "the large statement to a stopped backend did not end")
            if case .failure(let error as SQLError) = result {
                #expect(error.code == .connectionLost && error.message.contains("no answer"), "\(error)")
            } else {
                Issue.record("the statement did not fail: \(result)")
            }
        }
    }

    @Test(arguments: [Backend.postgres, .mysql])
    func aStatementLongerThanTheLimitFailsAndTheNextIsAnswered(backend: Backend) throws {
        let test = try TestDatabase(backend)
        defer { test.drop() }
        let database: any SQLDatabase & Sendable
        switch test.url {
        case .postgres(let server): database = try PostgresDatabase(server, access: .readWrite, answerTimeout: Self.limit)
        case .mysql(let server): database = try MySQLDatabase(server, access: .readWrite, answerTimeout: Self.limit)
        case .sqlite: Issue.record("not a server"); return
        }
        defer { database.close() }
        let sleep = backend == .postgres ? "SELECT pg_sleep(4)" : "SELECT SLEEP(4)"
        let outcome = try #require(Self.ended(within: .seconds(20)) { try database.query(SQLQuery(unsafeSQL: sleep)) })
        #expect(throws: SQLError.self) { try outcome.get() }
        // The server ended it at the limit (statement_timeout, max_statement_time); the session lives on.
        if case .failure(let error as SQLError) = outcome { #expect(error.code == .timedOut && error.isTransient, "\(error)") }
        #expect(try database.query(SQLQuery(unsafeSQL: "SELECT 2 AS n")).first?.values.first == .int(2))
    }

    /// `relocator migrate` opens with `.create` access: an index build may take long.
    @Test func aMigrationsSessionWaitsPastTheLimit() throws {
        let test = try TestDatabase(.postgres)
        defer { test.drop() }
        guard case .postgres(let server) = test.url else { Issue.record("not postgres"); return }
        let database = try PostgresDatabase(server, access: .create, answerTimeout: Self.limit)
        defer { database.close() }
        let rows = try database.query(SQLQuery(unsafeSQL: "SELECT pg_sleep(2), 3 AS n"))
        #expect(rows.first?.values.last == .int(3))
    }

    /// The limit sessions get from now on (`RELOCATOR_SQL_TIMEOUT_MS`, read as a command starts):
    /// 0 for none. (`MigrateCommandTests` refuses a bad value.)
    @Test func theLimitSessionsGetIsSetAndZeroMeansNone() {
        #expect(SessionLimits.answerTimeout == SessionLimits.defaultAnswerTimeout)
        SessionLimits.setAnswerTimeout(milliseconds: 0)
        #expect(SessionLimits.answerTimeout == nil)
        SessionLimits.setAnswerTimeout(milliseconds: 45_000)
        #expect(SessionLimits.answerTimeout == .seconds(45))
        SessionLimits.setAnswerTimeout(milliseconds: SessionLimits.defaultAnswerTimeout.milliseconds)
        #expect(SessionLimits.answerTimeout == SessionLimits.defaultAnswerTimeout)
    }
}
