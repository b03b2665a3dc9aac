import SQLStore
import Testing

/// Pure rendering: no database needed.
@Suite struct SQLDialectTests {
    @Test func interpolatedValuesBecomeParameters() {
        let cid = 7, name = "'; DROP TABLE contents; --"
        let query: SQLQuery = "SELECT * FROM contents WHERE cid = \(cid) AND filename = \(name) AND update_time < \(now: ())"
        let pg = query.render(for: .postgres)
        #expect(pg.sql == "SELECT * FROM contents WHERE cid = $1 AND filename = $2 AND update_time < now()")
        #expect(pg.binds == [.int(7), .text(name)])
        let my = query.render(for: .mysql)
        #expect(my.sql == "SELECT * FROM contents WHERE cid = ? AND filename = ? AND update_time < CURRENT_TIMESTAMP(6)")
        #expect(!my.sql.contains("DROP"))
    }

    @Test func identifiersAreQuotedPerDialect() {
        #expect(SQLDialect.postgres.quote("level") == "\"level\"")
        #expect(SQLDialect.mysql.quote("le`vel") == "`le``vel`")
        let query: SQLQuery = "SELECT * FROM \(identifier: "level")"
        #expect(query.render(for: .sqlite).sql == "SELECT * FROM \"level\"")
    }

    @Test func upsertSyntaxPerDialect() {
        #expect(SQLDialect.postgres.upsertClause(conflict: ["cid"], update: ["content_level"])
            == "ON CONFLICT (\"cid\") DO UPDATE SET \"content_level\" = excluded.\"content_level\"")
        #expect(SQLDialect.mysql.upsertClause(conflict: ["cid"], update: ["content_level"])
            == "ON DUPLICATE KEY UPDATE `content_level` = VALUES(`content_level`)")
    }

    @Test func unsafeSQLWithQuestionMarks() {
        let query = SQLQuery(unsafeSQL: "UPDATE level SET max_counts = ? WHERE content_level = ?", binds: [.int(5), .text("gold")])
        #expect(query.render(for: .postgres).sql == "UPDATE level SET max_counts = $1 WHERE content_level = $2")
        #expect(query.render(for: .postgres).binds == [.int(5), .text("gold")])
    }

    @Test func migrationFilesSplitIntoStatements() {
        let text = """
            -- comment; with a semicolon
            CREATE TABLE a (
                x INTEGER
            );

            CREATE INDEX a_x ON a (x);
            INSERT INTO a VALUES (1)
            """
        #expect(Migration.splitStatements(text) == ["CREATE TABLE a (\n    x INTEGER\n)", "CREATE INDEX a_x ON a (x)", "INSERT INTO a VALUES (1)"])
    }
}
