import Foundation
import RelocatorCore
@testable import SQLStore
import Testing
import TestSupport

/// PostgreSQL sessions prepare the statements they run, outside transactions, and run them by
/// name after that; a session that loses them, or whose plans no longer fit, answers as before.
@Suite struct PreparedStatementTests {
    typealias Statement = PreparedStatements.Statement

    // MARK: - The bookkeeping, without a server

    @Test func aStatementIsPreparedOnceUnderANameMadeOfItsText() {
        var statements = PreparedStatements()
        let byID = Statement(sql: "SELECT cid FROM contents WHERE cid = $1", parameters: 1)
        let name = PreparedStatements.name(for: byID)
        #expect(statements.lookup(byID) == .prepare(name))
        statements.record(byID, as: name)
        #expect(statements.lookup(byID) == .prepared(name))
        #expect(PreparedStatements.name(for: byID) == name)
        #expect(PreparedStatements.name(for: Statement(sql: byID.sql + " ", parameters: 1)) != name)
        #expect(PreparedStatements.name(for: Statement(sql: "SELECT 2", parameters: 0)) != PreparedStatements.name(for: Statement(sql: "SELECT 1", parameters: 0)))
        #expect(name.hasPrefix("relocator_") && name.hasSuffix("_\(byID.sql.utf8.count)"))
        // PostgreSQL keeps 63 bytes of a name: the widest one fits.
        #expect(PreparedStatements.name(for: Statement(sql: String(repeating: "x", count: 1 << 20), parameters: 0)).utf8.count <= 63)
    }

    @Test func aSessionPreparesAtMostItsLimitShortStatementsAndNothingOnceDisabled() {
        var statements = PreparedStatements()
        for i in 0..<PreparedStatements.most {
            let statement = Statement(sql: "SELECT \(i)", parameters: 0)
            guard case .prepare(let name) = statements.lookup(statement) else { Issue.record("statement \(i) not prepared"); return }
            if i.isMultiple(of: 2) { statements.record(statement, as: name) } else { statements.want(statement, as: name) }
        }
        let first = Statement(sql: "SELECT 0", parameters: 0)
        #expect(statements.lookup(Statement(sql: "SELECT -1", parameters: 0)) == .unprepared)
        #expect(statements.lookup(first) == .prepared(PreparedStatements.name(for: first)))
        let wanted = Statement(sql: "SELECT 1", parameters: 0)
        #expect(statements.lookup(wanted) == .prepare(PreparedStatements.name(for: wanted)), "still wanted")
        #expect(statements.takeWanted().count == PreparedStatements.most / 2)
        #expect(statements.takeWanted().isEmpty)
        let many = Statement(sql: "SELECT …", parameters: PreparedStatements.mostParameters + 1)
        #expect(statements.lookup(many) == .unprepared)
        statements.forgetAll()
        #expect(statements.lookup(first) == .prepare(PreparedStatements.name(for: first)))
        statements.refuse(first)
        #expect(statements.lookup(first) == .unprepared, "a statement whose PREPARE failed is not tried again")
        statements.forgetAll()
        statements.want(first, as: PreparedStatements.name(for: first))
        statements.disable()
        #expect(statements.lookup(first) == .unprepared)
        #expect(statements.takeWanted().isEmpty)
        statements.forgetAll()
        #expect(statements.lookup(first) == .prepare(PreparedStatements.name(for: first)), "a new session prepares again")
        #expect(PreparedStatements.isLost("26000") && PreparedStatements.isLost("0A000"))
        #expect(!PreparedStatements.isLost("23505") && !PreparedStatements.isLost(nil))
    }

    // MARK: - Against PostgreSQL

    /// The statements this session has prepared, as the server lists them, copied into a
    /// temporary table by a script (never prepared) before they are read (the temporary table
    /// goes with the session, and the database with the test).
    private func preparedOnServer(_ db: any SQLDatabase) throws -> Set<String> {
        let list = "relocator_test_prepared_list"
        try db.executeScript("DROP TABLE IF EXISTS \(list)")
        try db.executeScript("CREATE TEMPORARY TABLE \(list) AS SELECT name FROM pg_prepared_statements")
        return Set(try db.query(SQLQuery(unsafeSQL: "SELECT name FROM \(list) WHERE name <> ?", binds: [.text("")])).map {
            try $0.decode("name", as: String.self)
        })
    }

    private func withDatabase(_ body: (TestDatabase, any SQLDatabase) throws -> Void) throws {
        let test = try TestDatabase(.postgres)
        defer { test.drop() }
        let db = try test.open()
        defer { db.close() }
        try db.executeScript("CREATE TABLE items (id integer PRIMARY KEY, name text NOT NULL)")
        try db.executeScript("INSERT INTO items VALUES (1, 'one'), (2, 'two')")
        try body(test, db)
    }

    private static let byID = "SELECT * FROM items WHERE id = ?"

    private func name(_ db: any SQLDatabase, of query: SQLQuery) -> String {
        let (sql, binds) = query.render(for: db.dialect)
        return PreparedStatements.name(for: Statement(sql: sql, parameters: binds.count))
    }

    private func nameOf(_ db: any SQLDatabase, _ query: SQLQuery) throws -> String? {
        try db.query(query).first.map { try $0.decode("name", as: String.self) }
    }

    @Test func aStatementRunTwiceIsPreparedOnceOnTheSessionAndAnswersTheSame() throws {
        try withDatabase { _, db in
            let query = SQLQuery(unsafeSQL: Self.byID, binds: [.int(2)])
            #expect(try nameOf(db, query) == "two")
            #expect(try preparedOnServer(db).contains(name(db, of: query)))
            #expect(try nameOf(db, SQLQuery(unsafeSQL: Self.byID, binds: [.int(1)])) == "one")
            #expect(try db.execute(SQLQuery(unsafeSQL: "UPDATE items SET name = ? WHERE id = ?", binds: [.text("uno"), .int(1)])) == 1)
            #expect(try db.execute(SQLQuery(unsafeSQL: "UPDATE items SET name = ? WHERE id = ?", binds: [.text("eins"), .int(1)])) == 1)
            #expect(try nameOf(db, SQLQuery(unsafeSQL: Self.byID, binds: [.int(1)])) == "eins")
            // Scripts, and statements with many parameters, are not prepared.
            let many = SQLQuery(unsafeSQL: "SELECT count(*) AS n FROM items WHERE id IN (\(Array(repeating: "?", count: 17).joined(separator: ", ")))",
                                binds: (1...17).map { .int($0) })
            #expect(try db.query(many).first?["n"] == .int(2))
            let prepared = try preparedOnServer(db)
            #expect(!prepared.contains(name(db, of: many)))
            // The lookup, the update, and the listing's own query.
            let update = SQLQuery(unsafeSQL: "UPDATE items SET name = ? WHERE id = ?", binds: [.text(""), .int(0)])
            #expect(prepared.contains(name(db, of: update)) && prepared.count == 3, "\(prepared)")
        }
    }

    @Test func aStatementFirstRunInATransactionIsPreparedOnceTheTransactionIsOver() throws {
        try withDatabase { _, db in
            let query = SQLQuery(unsafeSQL: Self.byID, binds: [.int(2)])
            let inside = try db.transaction { () -> (String?, Set<String>) in
                (try nameOf(db, query), try preparedOnServer(db))
            }
            #expect(inside.0 == "two")
            #expect(!inside.1.contains(name(db, of: query)), "nothing is prepared inside a transaction")
            #expect(try nameOf(db, SQLQuery(unsafeSQL: "SELECT name FROM items WHERE id = ?", binds: [.int(1)])) == "one")
            #expect(try preparedOnServer(db).contains(name(db, of: query)))
        }
    }

    @Test func aSessionThatLostItsStatementsAnswersAndStopsPreparing() throws {
        try withDatabase { _, db in
            let query = SQLQuery(unsafeSQL: Self.byID, binds: [.int(2)])
            _ = try db.query(query)
            try db.executeScript("DEALLOCATE ALL")  // as `DISCARD ALL` or a pooler's other session would
            #expect(try nameOf(db, query) == "two")
            #expect(try nameOf(db, SQLQuery(unsafeSQL: "SELECT name FROM items WHERE id = ?", binds: [.int(1)])) == "one")
            #expect(try preparedOnServer(db).isEmpty)
        }
    }

    @Test func aTransactionThatLostItsStatementIsRunAgainWhole() throws {
        try withDatabase { _, db in
            let update = SQLQuery(unsafeSQL: "UPDATE items SET name = name || ? WHERE id = ?", binds: [.text("!"), .int(2)])
            _ = try db.execute(update)
            try db.executeScript("DEALLOCATE ALL")
            var runs = 0
            let changed = try db.transaction { () -> Int in
                runs += 1
                return try db.execute(update)
            }
            #expect(runs == 2 && changed == 1)
            // The first run was rolled back: one "!" from before, one from the transaction.
            #expect(try nameOf(db, SQLQuery(unsafeSQL: Self.byID, binds: [.int(2)])) == "two!!")
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
            // Prepared under its name by another user of this server session (a pooler's); a
            // look-alike here, whose answer only a run by that name gives.
            try db.executeScript("PREPARE \(name(db, of: query)) (integer) AS SELECT 'by name'::text AS name")
            #expect(try nameOf(db, query) == "by name")
            #expect(try db.transaction { try nameOf(db, query) } == "by name")
        }
    }

    @Test func aStatementWhosePrepareFailsRunsUnpreparedAndIsNotPreparedAgain() throws {
        try withDatabase { _, db in
            // First run inside a transaction on a table only that transaction has: its PREPARE,
            // made after the transaction, fails; its runs go on, unprepared.
            let query = SQLQuery(unsafeSQL: "SELECT n FROM fleeting WHERE n = ?", binds: [.int(3)])
            try db.transaction {
                try db.executeScript("CREATE TEMPORARY TABLE fleeting (n integer) ON COMMIT DROP")
                try db.executeScript("INSERT INTO fleeting VALUES (3)")
                #expect(try db.query(query).first?["n"] == .int(3))
            }
            #expect(throws: SQLError.self) { try db.query(query) }
            try db.executeScript("CREATE TABLE fleeting (n integer)")
            try db.executeScript("INSERT INTO fleeting VALUES (3)")
            #expect(try db.query(query).first?["n"] == .int(3))
            #expect(try !preparedOnServer(db).contains(name(db, of: query)))
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
            #expect(try nameOf(db, query) == "two")
            #expect(try db.query("SELECT pg_backend_pid() AS pid").first.map { try $0.decode("pid", as: Int64.self) } != pid)
            #expect(try preparedOnServer(db).contains(name(db, of: query)))
        }
    }
}
