import Foundation
import RelocatorCore
import SQLStore
import Testing
import TestSupport

/// The migrations compiled into the binary, their preconditions, and the migrator's status.
@Suite struct MigrationTests {
    static let allIDs = ["0001_original_tables", "0002_relocations", "0003_unique_filenames", "0004_relocation_gen", "0005_level_policy"]

    // MARK: - Embedded files (no server)

    @Test(arguments: SQLDialect.allCases)
    func everyMigrationFileOnDiskIsInTheEmbeddedListWithTheSameBytes(dialect: SQLDialect) throws {
        let directory = TestEnvironment.packageRoot.appendingPathComponent("Sources/SQLStore/Migrations/\(dialect.rawValue)")
        let onDisk = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        let listed = try #require(Migration.embeddedFiles[dialect])
        #expect(listed.map(\.file) == onDisk, "a file in \(directory.path) is missing from EmbeddedMigrations.swift, or the list names a file that is not there")
        for (file, bytes) in listed {
            let data = try Data(contentsOf: directory.appendingPathComponent(file))
            #expect(Array(data) == bytes, "\(file) differs from its embedded copy")
        }
        // Parsed from disk (the `--migrations DIR` path) and from the binary: the same migrations.
        #expect(try Migration.load(directory: directory) == Migration.embedded(dialect: dialect))
    }

    @Test func everyDialectHasTheSameMigrationsInTheSameOrder() {
        for dialect in SQLDialect.allCases {
            #expect(Migration.embedded(dialect: dialect).map(\.id) == Self.allIDs)
        }
        // The unique-filename migration checks for duplicates first, on every dialect.
        for dialect in SQLDialect.allCases {
            let unique = Migration.embedded(dialect: dialect)[2]
            #expect(unique.preconditions.count == 1)
            #expect(unique.preconditions.first?.problem == "filenames that belong to more than one content")
            #expect(unique.preconditions.first?.fix.contains("relocator contents add --cid N --filename NEW") == true)
        }
    }

    @Test func aFileNameWithOrWithoutItsDialectGivesTheSameMigration() throws {
        let plain = try Migration.parse(file: "0007_add_things.sql", text: "CREATE TABLE t (x INTEGER);")
        let named = try Migration.parse(file: "0007_add_things.postgres.sql", text: "CREATE TABLE t (x INTEGER);")
        #expect(plain == named)
        #expect(plain.id == "0007_add_things")
        for bad in ["add_things.sql", "0000_zero.sql", "0007_.sql", "0007_a.b.sql", "x7_a.sql"] {
            #expect(throws: SQLError.self, "\(bad)") { try Migration.parse(file: bad, text: "SELECT 1;") }
        }
    }

    @Test func preconditionDirectivesMarkTheStatementThatFollowsThem() throws {
        let text = """
            -- A comment that is not a directive.
            -- @precondition: rows that are wrong
            -- @fix: delete them
            SELECT a, b
            FROM t WHERE bad;

            CREATE INDEX t_a ON t (a);
            """
        let migration = try Migration.parse(file: "0009_check.sql", text: text)
        #expect(migration.statements == ["CREATE INDEX t_a ON t (a)"])
        #expect(migration.preconditions == [Migration.Precondition(problem: "rows that are wrong", fix: "delete them", query: "SELECT a, b\nFROM t WHERE bad")])

        let failures = [
            "-- @precondition: x\nSELECT 1;\nCREATE TABLE t (a INTEGER);": "needs both",
            "-- @fix: y\nSELECT 1;\nCREATE TABLE t (a INTEGER);": "needs both",
            "-- @precondtion: x\n-- @fix: y\nSELECT 1;\nCREATE TABLE t (a INTEGER);": "unknown directive '-- @precondtion'",
            "CREATE TABLE t (a INTEGER);\n-- @precondition: x\n-- @fix: y\n": "not followed by a statement",
            "-- @precondition: x\n-- @fix: y\nSELECT 1;": "holds no statement",
        ]
        for (text, expected) in failures {
            let error = #expect(throws: SQLError.self) { try Migration.parse(file: "0009_check.sql", text: text) }
            #expect(error?.code == .migration)
            #expect(error?.description.contains(expected) == true, "\(String(describing: error))")
        }
    }

    @Test func aRefusalListsTwentyProblemsThenHowManyMoreOnOneLine() {
        let migration = Migration(version: 3, name: "unique_filenames", statements: ["CREATE INDEX x ON y (z)"])
        let precondition = Migration.Precondition(problem: "filenames that belong to more than one content", fix: "rename one", query: "SELECT 1")
        let rows = (1...23).map { SQLRow(columns: ["filename", "cids"], values: [.text("f\($0)\n.mp4"), .text("\($0), \($0 + 100)")]) }
        let message = Migrator.refusal(migration: migration, precondition: precondition, rows: rows)
        #expect(message.hasPrefix("0003_unique_filenames not applied: 23 filenames that belong to more than one content: filename 'f1\\n.mp4' (cids 1, 101), "))
        #expect(message.contains("filename 'f20\\n.mp4' (cids 20, 120), and 3 more; fix: rename one"))
        #expect(!message.contains("f21"))
        #expect(!message.contains("\n"))
    }

    @Test func anExplicitDirectoryOverridesTheEmbeddedFiles() throws {
        let directory = try TemporaryDirectory("relocator-migrations")
        defer { directory.remove() }
        try FileManager.default.createDirectory(atPath: directory.path + "/sqlite", withIntermediateDirectories: true)
        try "CREATE TABLE only_this (x INTEGER);\n".write(toFile: directory.path + "/sqlite/0001_only_this.sql", atomically: true, encoding: .utf8)
        #expect(try Migration.forDialect(.sqlite, directory: directory.path).map(\.id) == ["0001_only_this"])
        #expect(try Migration.forDialect(.sqlite, directory: nil).map(\.id) == Self.allIDs)
        let missing = #expect(throws: SQLError.self) { try Migration.forDialect(.postgres, directory: directory.path) }
        #expect(missing?.description == "migration: \(directory.path)/postgres does not exist")
    }

    // MARK: - On each backend

    func withDatabase(_ backend: Backend, _ body: (any SQLDatabase, TestDatabase) throws -> Void) throws {
        let test = try TestDatabase(backend)
        defer { test.drop() }
        let db = try test.open()
        defer { db.close() }
        try body(db, test)
    }

    @Test(arguments: Backend.allCases)
    func theStatusOfADatabaseNeverMigratedSaysSoAndWritesNothing(backend: Backend) throws {
        let test = try TestDatabase(backend)
        defer { test.drop() }
        try test.open().close()  // an empty SQLite file exists; the servers' databases exist
        let db = try test.open(access: .readOnly)
        defer { db.close() }
        let status = try Migrator(database: db, migrations: test.migrations()).status()
        #expect(!status.schemaPresent)
        #expect(!status.isCurrent)
        #expect(status.applied.isEmpty)
        #expect(status.pending == Self.allIDs)
        #expect(status.latestKnown == "0005_level_policy")
        #expect(status.latestKnownVersion == 5)
        #expect(status.summary == "no schema: run `relocator migrate`")
        // Nothing was created: the table is still missing.
        let missing = #expect(throws: SQLError.self) { try db.query("SELECT version FROM schema_migrations") }
        #expect(missing?.code == .schemaMissing)
    }

    @Test(arguments: Backend.allCases)
    func theStatusNamesAppliedPendingAndUnknownMigrations(backend: Backend) throws {
        try withDatabase(backend) { db, test in
            let all = try test.migrations()
            try Migrator(database: db, migrations: Array(all.prefix(2))).migrate()
            let migrator = Migrator(database: db, migrations: all)
            let partial = try migrator.status()
            #expect(partial.schemaPresent)
            #expect(partial.applied == ["0001_original_tables", "0002_relocations"])
            #expect(partial.pending == ["0003_unique_filenames", "0004_relocation_gen", "0005_level_policy"])
            #expect(!partial.isCurrent)
            #expect(partial.summary == "schema at version 0002_relocations, 3 migrations pending (0003_unique_filenames, 0004_relocation_gen, 0005_level_policy): run `relocator migrate`")

            #expect(try migrator.migrate().map(\.id) == ["0003_unique_filenames", "0004_relocation_gen", "0005_level_policy"])
            let current = try migrator.status()
            #expect(current.isCurrent)
            #expect(current.applied == Self.allIDs)
            #expect(current.summary == "schema at version 0005_level_policy, the latest this binary knows")

            // A newer binary applied 0006: still current for this one, and said.
            try db.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (\(6), \("from_the_future"), \(now: ()))")
            let newer = try migrator.status()
            #expect(newer.isCurrent)
            #expect(newer.unknown == ["0006_from_the_future"])
            #expect(newer.summary == "schema at version 0006_from_the_future, newer than this binary (0005_level_policy is the latest it knows)")
        }
    }

    @Test(arguments: Backend.allCases)
    func duplicateFilenamesStopTheUniqueIndexMigrationWithTheirListAndTheFix(backend: Backend) throws {
        try withDatabase(backend) { db, test in
            let all = try test.migrations()
            try Migrator(database: db, migrations: Array(all.prefix(2))).migrate()
            // 22 filenames held by two contents each (cids n and n + 100); names that differ only
            // in case or a trailing space are different files, not duplicates.
            for n in 1...22 {
                let name = "dup-\(n < 10 ? "0" : "")\(n).mp4"
                try db.execute("INSERT INTO contents (cid, filename, content_level) VALUES (\(n), \(name), \("bronze"))")
                try db.execute("INSERT INTO contents (cid, filename, content_level) VALUES (\(n + 100), \(name), \("bronze"))")
            }
            for (cid, name) in [(500, "Case.mp4"), (501, "case.mp4"), (502, "case.mp4 ")] {
                try db.execute("INSERT INTO contents (cid, filename, content_level) VALUES (\(cid), \(name), \("bronze"))")
            }
            let migrator = Migrator(database: db, migrations: all)
            let refused = #expect(throws: SQLError.self) { try migrator.migrate() }
            #expect(refused?.code == .migration)
            let text = refused?.description ?? ""
            #expect(text.contains("0003_unique_filenames not applied: 22 filenames that belong to more than one content: filename 'dup-01.mp4' (cids 1, 101), filename 'dup-02.mp4' (cids 2, 102),"), "\(text)")
            #expect(text.contains("filename 'dup-20.mp4' (cids 20, 120), and 2 more; fix: give each of those contents its own filename (`relocator contents add --cid N --filename NEW --level L`) or delete the extra rows, then run `relocator migrate` again"))
            #expect(!text.contains("dup-21") && !text.contains("ase.mp4"))
            // Nothing of 0003 was applied, and nothing after it.
            #expect(try migrator.status().applied == ["0001_original_tables", "0002_relocations"])
            try db.execute("INSERT INTO contents (cid, filename, content_level) VALUES (\(999), \("dup-01.mp4"), \("bronze"))")

            // Fixed: each filename once; the rest applies, and the index refuses a duplicate from now on.
            try db.execute("DELETE FROM contents WHERE cid > \(100) AND cid < \(500) OR cid = \(999)")
            #expect(try migrator.migrate().map(\.id) == ["0003_unique_filenames", "0004_relocation_gen", "0005_level_policy"])
            let duplicate = #expect(throws: SQLError.self) {
                try db.execute("INSERT INTO contents (cid, filename, content_level) VALUES (\(998), \("dup-01.mp4"), \("bronze"))")
            }
            #expect(duplicate?.code == .constraintViolation)
            try db.execute("INSERT INTO contents (cid, filename, content_level) VALUES (\(997), \("DUP-01.mp4"), \("bronze"))")
        }
    }

    @Test func migratingANewSQLiteFileUsesTheEmbeddedFilesFromAnyDirectory() throws {
        let directory = try TemporaryDirectory("relocator-migrate")
        defer { directory.remove() }
        let url = DatabaseURL.sqlite(path: directory.path + "/fresh.sqlite")
        let run = try Migrator.migrate(url)
        #expect(run.applied == Self.allIDs)
        #expect(run.status.isCurrent)
        #expect(run.location == "sqlite \(directory.path)/fresh.sqlite")
        #expect(try Migrator.migrate(url).applied.isEmpty)
    }

    @Test func aMigrateThatFailsRemovesTheSQLiteFileItCreatedButNeverAnExistingOne() throws {
        let directory = try TemporaryDirectory("relocator-migrate")
        defer { directory.remove() }
        try FileManager.default.createDirectory(atPath: directory.path + "/bad/sqlite", withIntermediateDirectories: true)
        try "CREATE TABLE fine (x INTEGER);\n".write(toFile: directory.path + "/bad/sqlite/0006_fine.sql", atomically: true, encoding: .utf8)
        try "CREATE TABLE broken (x INTEGER;\n".write(toFile: directory.path + "/bad/sqlite/0007_broken.sql", atomically: true, encoding: .utf8)

        // 0006 applies, 0007 fails: the file this run created goes.
        let path = directory.path + "/new.sqlite"
        let failed = #expect(throws: SQLError.self) { try Migrator.migrate(.sqlite(path: path), directory: directory.path + "/bad") }
        #expect(failed?.message.hasPrefix("0007_broken: ") == true)
        for file in [path, path + "-wal", path + "-shm"] {
            #expect(!FileManager.default.fileExists(atPath: file), "\(file) was left behind")
        }

        // A database that was there before stays, with what it held.
        let existing = directory.path + "/existing.sqlite"
        try Migrator.migrate(.sqlite(path: existing))
        #expect(throws: SQLError.self) { try Migrator.migrate(.sqlite(path: existing), directory: directory.path + "/bad") }
        let db = try SQLiteDatabase(path: existing, access: .readOnly)
        defer { db.close() }
        #expect(try Migrator(database: db, migrations: Migration.embedded(dialect: .sqlite)).status().applied == Self.allIDs + ["0006_fine"])
    }
}
