import Foundation
import RelocatorCore
@testable import SQLStore
import Testing
import TestSupport

/// PostgreSQL sessions prepare the statements they run and run them by name after that; a session
/// that loses them, or whose plans no longer fit, answers as before.
@Suite struct PreparedStatementTests {
    // MARK: - The bookkeeping, without a server

    @Test func aStatementIsPreparedOnceUnderANameMadeOfItsText() {
        var statements = PreparedStatements()
        let sql = "SELECT cid FROM contents WHERE cid = $1"
        let name = PreparedStatements.name(for: sql)
        #expect(statements.lookup(sql) == .prepare(name))
        statements.record(sql, as: name)
        #expect(statements.lookup(sql) == .prepared(name))
        #expect(PreparedStatements.name(for: sql) == name)
        #expect(PreparedStatements.name(for: sql + " ") != name)
        #expect(PreparedStatements.name(for: "SELECT 2") != PreparedStatements.name(for: "SELECT 1"))
        #expect(name.hasPrefix("relocator_") && name.hasSuffix("_\(sql.utf8.count)"))
        // PostgreSQL keeps 63 bytes of a name: the widest one fits.
        #expect(PreparedStatements.name(for: String(repeating: "x", count: 1 << 20)).utf8.count <= 63)
    }

    @Test func aSessionPreparesAtMostItsLimitAndNothingOnceDisabledOrNew() {
        var statements = PreparedStatements()
        for i in 0..<PreparedStatements.most {
            let sql = "SELECT \(i)"
            guard case .prepare(let name) = statements.lookup(sql) else { Issue.record("statement \(i) not prepared"); return }
            statements.record(sql, as: name)
        }
        #expect(statements.lookup("SELECT -1") == .unprepared)
        #expect(statements.lookup("SELECT 0") == .prepared(PreparedStatements.name(for: "SELECT 0")))
        statements.forgetAll()
        #expect(statements.lookup("SELECT 0") == .prepare(PreparedStatements.name(for: "SELECT 0")))
        statements.disable()
        #expect(statements.lookup("SELECT 0") == .unprepared)
        #expect(statements.lookup("SELECT -1") == .unprepared)
        #expect(PreparedStatements.isLost("26000") && PreparedStatements.isLost("0A000"))
        #expect(!PreparedStatements.isLost("23505") && !PreparedStatements.isLost(nil))
    }

    // MARK: - Against PostgreSQL

    /// The statements this session has prepared, as the server lists them.
    private func preparedOnServer(_ db: any SQLDatabase) throws -> Set<String> {
        Set(try db.query("SELECT name FROM pg_prepared_statements").map { try $0.decode("name", as: String.self) })
    }

    private func withDatabase(_ body: (TestDatabase, any SQLDatabase) throws -> Void) throws {
        let test = try TestDatabase(.postgres)
        defer { test.drop() }
        let db = try test.open()
        defer { db.close() }
        try db.executeScript("CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL)")
        try db.executeScript("INSERT INTO items VALUES (1, 'one'), (2, 'two')")
        try body(test, db)
    }

    private static let byID = "SELECT * FROM items WHERE id = ?"

    private func name(_ db: any SQLDatabase, of query: SQLQuery) -> String {
        PreparedStatements.name(for: query.render(for: db.dialect).sql)
    }

    @Test func aStatementRunTwiceIsPreparedOnceOnTheSessionAndAnswersTheSame() throws {
        try withDatabase { _, db in
            let query = SQLQuery(unsafeSQL: Self.byID, binds: [.int(2)])
            #expect(try db.query(query).first.map { try $0.decode("name", as: String.self) } == "two")
            #expect(try preparedOnServer(db).contains(name(db, of: query)))
            #expect(try db.query(SQLQuery(unsafeSQL: Self.byID, binds: [.int(1)])).first.map { try $0.decode("name", as: String.self) } == "one")
            #expect(try db.execute(SQLQuery(unsafeSQL: "UPDATE items SET name = ? WHERE id = ?", binds: [.text("uno"), .int(1)])) == 1)
            #expect(try db.execute(SQLQuery(unsafeSQL: "UPDATE items SET name = ? WHERE id = ?", binds: [.text("eins"), .int(1)])) == 1)
            #expect(try db.query(SQLQuery(unsafeSQL: Self.byID, binds: [.int(1)])).first.map { try $0.decode("name", as: String.self) } == "eins")
            // Scripts are not prepared.
            try db.executeScript("SELECT 42")
            #expect(try !preparedOnServer(db).contains(PreparedStatements.name(for: "SELECT 42")))
        }
    }

    @Test func aSessionThatLostItsStatementsAnswersAndStopsPreparing() throws {
        try withDatabase { _, db in
            let query = SQLQuery(unsafeSQL: Self.byID, binds: [.int(2)])
            _ = try db.query(query)
            try db.executeScript("DEALLOCATE ALL")  // as `DISCARD ALL` or a pooler's other session would
            #expect(try db.query(query).first.map { try $0.decode("name", as: String.self) } == "two")
            #expect(try db.query(SQLQuery(unsafeSQL: "SELECT name FROM items WHERE id = ?", binds: [.int(1)])).first.map { try $0.decode("name", as: String.self) } == "one")
            #expect(try preparedOnServer(db).isEmpty)
        }
    }

    @Test func aStatementLostInsideATransactionFailsItAndTheRetryAnswers() throws {
        try withDatabase { _, db in
            let query = SQLQuery(unsafeSQL: Self.byID, binds: [.int(2)])
            _ = try db.query(query)
            try db.executeScript("DEALLOCATE ALL")
            #expect(throws: SQLError.self) {
                try db.transaction { _ = try db.query(query) }
            }
            #expect(try db.transaction { try db.query(query).first.map { try $0.decode("name", as: String.self) } } == "two")
        }
    }

    @Test func aTableChangedUnderAPreparedStatementAnswersWithItsNewColumns() throws {
        try withDatabase { _, db in
            let query = SQLQuery(unsafeSQL: Self.byID, binds: [.int(1)])
            #expect(try db.query(query).first?.columns == ["id", "name"])
            try db.executeScript("ALTER TABLE items ADD COLUMN size bigint NOT NULL DEFAULT 7")
            let row = try db.query(query).first
            #expect(row?.columns == ["id", "name", "size"])
            #expect(row?["size"] == .int(7))
        }
    }

    @Test func aNameTheSessionHasAlreadyIsTakenAsTheSameStatement() throws {
        try withDatabase { _, db in
            let query = SQLQuery(unsafeSQL: Self.byID, binds: [.int(2)])
            let sql = query.render(for: db.dialect).sql
            // Prepared under its name by another user of this server session (a pooler's).
            try db.executeScript("PREPARE \(PreparedStatements.name(for: sql)) AS \(sql)")
            #expect(try db.query(query).first.map { try $0.decode("name", as: String.self) } == "two")
            #expect(try db.query(query).first.map { try $0.decode("name", as: String.self) } == "two")
        }
    }

    @Test func aSessionReestablishedPreparesItsStatementsAgain() throws {
        try withDatabase { test, db in
            let query = SQLQuery(unsafeSQL: Self.byID, binds: [.int(2)])
            _ = try db.query(query)
            let pid = try #require(db.query("SELECT pg_backend_pid() AS pid").first.map { try $0.decode("pid", as: Int64.self) })
            let admin = try test.open(access: .readWrite)
            defer { admin.close() }
            _ = try admin.query(SQLQuery(unsafeSQL: "SELECT pg_terminate_backend(?)", binds: [.int(pid)]))
            // The first call finds the session gone (the pool's caller retries), the next one runs
            // on a new session, which prepares it again.
            #expect {
                _ = try db.query(query)
            } throws: { ($0 as? SQLError)?.code == .connectionLost }
            #expect(try db.query(query).first.map { try $0.decode("name", as: String.self) } == "two")
            #expect(try db.query("SELECT pg_backend_pid() AS pid").first.map { try $0.decode("pid", as: Int64.self) } != pid)
            #expect(try preparedOnServer(db).contains(name(db, of: query)))
        }
    }
}
