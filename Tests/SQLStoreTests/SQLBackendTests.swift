import Foundation
import RelocatorCore
import SQLStore
import Testing
import TestSupport

/// Every test runs on all three backends, each in a database of its own.
@Suite struct SQLBackendTests {
    func withDatabase(_ backend: Backend, migrated: Bool = true, _ body: (any SQLDatabase, TestDatabase) throws -> Void) throws {
        let test = try TestDatabase(backend)
        defer { test.drop() }
        let db = try test.open()
        defer { db.close() }
        if migrated { try Migrator(database: db, migrations: test.migrations()).migrate() }
        try body(db, test)
    }

    @Test(arguments: Backend.allCases)
    func migratingTwiceIsANoOp(backend: Backend) throws {
        try withDatabase(backend, migrated: false) { db, test in
            let migrator = Migrator(database: db, migrations: try test.migrations())
            let first = try migrator.migrate()
            #expect(first.map(\.id) == ["0001_original_tables", "0002_relocations", "0003_unique_filenames", "0004_relocation_gen", "0005_level_policy"])
            try db.execute("INSERT INTO level (content_level, min_counts, max_counts) VALUES (\("gold"), \(10), \(20))")
            #expect(try migrator.migrate().isEmpty)
            #expect(try migrator.pending().isEmpty)
            #expect(try db.query("SELECT version FROM schema_migrations ORDER BY version").map { try $0.decode("version", as: Int.self) } == [1, 2, 3, 4, 5])
            // The rows written between the runs are still there.
            #expect(try LevelStore(database: db).levels() == [LevelRange(name: "gold", minCounts: 10, maxCounts: 20)])
            // The original tables keep their names and columns.
            #expect(try db.query("SELECT cid, filename, content_level, update_time FROM contents").isEmpty)
            _ = try db.query("SELECT cid, from_level, to_level, bytes, checksum, worker, attempts, moved_at, job_id, gen FROM relocations")
            // The original level table stays exactly as it was: these three columns and no other.
            #expect(try db.query("SELECT * FROM level")[0].columns == ["content_level", "min_counts", "max_counts"])
        }
    }

    @Test(arguments: Backend.allCases)
    func hostileStringsUnicodeAndNullsRoundTrip(backend: Backend) throws {
        try withDatabase(backend) { db, _ in
            let names = [
                "it's.mp4", "'; DROP TABLE contents; --", "\"double\" quotes.mkv", "back\\slash", "日本語 🎞️ ñ.mp4",
                "percent % and ? and $1", "tab\tand\nnewline",
            ] + (backend == .postgres ? [] : ["nul\u{0}inside"])  // PostgreSQL text cannot hold NUL at all
            for (index, name) in names.enumerated() {
                let time: String? = index % 2 == 0 ? nil : "2024-01-02 03:04:05"
                try db.execute("""
                    INSERT INTO contents (cid, filename, content_level, update_time)
                    VALUES (\(index + 1), \(name), \("bronze"), \(time))
                    """)
            }
            let rows = try db.query("SELECT cid, filename, content_level, update_time FROM contents ORDER BY cid")
            #expect(try rows.map { try $0.decode("filename", as: String.self) } == names)
            #expect(try rows.map { try $0.decode("cid", as: Int.self) } == Array(1...names.count))
            #expect(try rows[0].decodeIfPresent("update_time", as: String.self) == nil)
            #expect(try rows[1].decodeIfPresent("update_time", as: String.self)?.hasPrefix("2024-01-02") == true)
            // Found again by the same hostile value used as a parameter.
            let found = try db.query("SELECT cid FROM contents WHERE filename = \(names[1])")
            #expect(try found.map { try $0.decode("cid", as: Int.self) } == [2])
            #expect(try db.query("SELECT COUNT(*) AS n FROM contents")[0].decode("n", as: Int.self) == names.count)
        }
    }

    @Test(arguments: Backend.allCases)
    func aFailedStatementInATransactionRollsBackEverything(backend: Backend) throws {
        try withDatabase(backend) { db, _ in
            try db.execute("INSERT INTO contents (cid, filename, content_level) VALUES (\(1), \("a.mp4"), \("bronze"))")
            #expect {
                try db.transaction {
                    try db.execute("UPDATE contents SET content_level = \("gold") WHERE cid = \(1)")
                    try db.execute("INSERT INTO contents (cid, filename, content_level) VALUES (\(2), \("b.mp4"), \("silver"))")
                    // The primary key exists: the whole transaction must go.
                    try db.execute("INSERT INTO contents (cid, filename, content_level) VALUES (\(1), \("dup.mp4"), \("gold"))")
                }
            } throws: { error in
                (error as? SQLError)?.code == .constraintViolation
            }
            let rows = try db.query("SELECT cid, content_level FROM contents ORDER BY cid")
            #expect(rows.count == 1)
            #expect(try rows[0].decode("content_level", as: String.self) == "bronze")
            // And the connection is usable and commits afterwards.
            try db.transaction { try db.execute("UPDATE contents SET content_level = \("silver") WHERE cid = \(1)") }
            #expect(try db.query("SELECT content_level FROM contents")[0].decode("content_level", as: String.self) == "silver")
        }
    }

    @Test(arguments: Backend.allCases)
    func theDialectsUpsertWorksOnTheRealServer(backend: Backend) throws {
        try withDatabase(backend) { db, _ in
            let tail = db.dialect.upsertClause(conflict: ["content_level"], update: ["min_counts", "max_counts"])
            for max in [100, 200] {
                try db.execute("INSERT INTO level (content_level, min_counts, max_counts) VALUES (\("gold"), \(1), \(max)) \(unsafeSQL: tail)")
            }
            #expect(try LevelStore(database: db).levels() == [LevelRange(name: "gold", minCounts: 1, maxCounts: 200)])
            let ignoring = db.dialect.insertIgnoring(into: "level", columns: ["content_level", "min_counts", "max_counts"], conflict: ["content_level"])
            let changed = try db.execute("\(unsafeSQL: ignoring.head) VALUES (\("gold"), \(5), \(6)) \(unsafeSQL: ignoring.tail)")
            #expect(changed == 0)
            #expect(try LevelStore(database: db).levels()[0].maxCounts == 200)
        }
    }

    @Test(arguments: Backend.allCases)
    func typedDecodingAndItsErrors(backend: Backend) throws {
        try withDatabase(backend) { db, _ in
            let row = try #require(try db.query("SELECT \(Int64(9_007_199_254_740_993)) AS big, \(2.5) AS ratio, \("x") AS label, \(SQLValue.null) AS empty_value").first)
            #expect(try row.decode("big", as: Int64.self) == 9_007_199_254_740_993)
            #expect(try row.decode("ratio", as: Double.self) == 2.5)
            #expect(try row.decode("label", as: String.self) == "x")
            #expect(try row.decodeIfPresent("empty_value", as: String.self) == nil)
            #expect(throws: SQLError.self) { try row.decode("empty_value", as: String.self) }
            #expect(throws: SQLError.self) { try row.decode("label", as: Int.self) }
            #expect(throws: SQLError.self) { try row.decode("absent", as: Int.self) }
        }
    }

    @Test(arguments: Backend.allCases)
    func badSQLIsReportedAsSuch(backend: Backend) throws {
        try withDatabase(backend) { db, _ in
            #expect { try db.query("SELEC nonsense") } throws: { ($0 as? SQLError)?.code == .badSQL }
            #expect { try db.query("SELECT no_such_column FROM contents") } throws: { ($0 as? SQLError)?.code == .badSQL }
            let one = try db.query("SELECT 1 AS one")[0].decode("one", as: Int.self)
            #expect(one == 1)
        }
    }

    @Test(arguments: [Backend.postgres, .mysql])
    func aWrongPasswordAndARefusedConnectionAreDistinctAndNeverShowThePassword(backend: Backend) throws {
        let test = try TestDatabase(backend)
        defer { test.drop() }
        #expect {
            try openDatabase(test.withPassword("wrong-password-123"))
        } throws: { error in
            guard let error = error as? SQLError else { return false }
            return error.code == .authenticationFailed && !error.description.contains("wrong-password-123")
        }
        let refused = try test.refusedURL()
        #expect {
            try openDatabase(refused)
        } throws: { error in
            guard let error = error as? SQLError else { return false }
            return error.code == .connectionRefused && !error.description.contains("relocator-")
        }
    }

    @Test func aSQLiteFileInADirectoryThatDoesNotExistIsAClearError() throws {
        #expect {
            try SQLiteDatabase(path: "/nonexistent-relocator-dir/x/db.sqlite", access: .create)
        } throws: { error in
            (error as? SQLError)?.description
                == "sqlite /nonexistent-relocator-dir/x/db.sqlite: cannot create the database file: No such file or directory (ENOENT)"
        }
    }

    @Test(arguments: Backend.allCases)
    func aCommittedBatchIsRecordedOnceAndTheNewestJobWins(backend: Backend) throws {
        try withDatabase(backend) { db, _ in
            let store = ContentStore(database: db)
            for cid in 1...1200 { try store.put(Content(cid: Int64(cid), filename: "f\(cid)", level: "bronze")) }
            var entries = (1...1200).map {
                CommitEntry(jobID: "\($0):10", cid: Int64($0), from: "bronze", to: "silver", bytes: Int64($0), checksum: "c\($0)", worker: "w", attempts: 0)
            }
            // An older and a newer job of cid 1 in one batch: the newer one's level stands.
            entries.append(CommitEntry(jobID: "1:20", cid: 1, from: "silver", to: "gold", bytes: 1, checksum: "c1", worker: "w", attempts: 1))
            try store.commit(entries)
            try store.commit(entries)  // delivered twice
            #expect(try store.relocations(limit: 5000).count == 1201)
            #expect(try store.content(cid: 1)?.level == "gold")
            #expect(try store.content(cid: 1200)?.level == "silver")
            #expect(try store.content(cid: 1200)?.updateTime != nil)
            #expect(try store.contents(cids: [1, 5, 99999]).keys.sorted() == [1, 5])
        }
    }

    @Test(arguments: Backend.allCases)
    func seedingLevelsRefusesATableThatHasRows(backend: Backend) throws {
        try withDatabase(backend) { db, _ in
            let store = LevelStore(database: db)
            try store.seed(LevelRange.defaults)
            #expect(try store.levels().map(\.name) == ["bronze", "silver", "gold"])
            #expect(throws: SQLError.self) { try store.seed(LevelRange.defaults) }
            #expect(try store.levels().count == 3)
        }
    }
}
