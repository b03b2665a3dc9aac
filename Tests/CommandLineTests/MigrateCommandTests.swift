import Foundation
import Testing
import TestSupport

/// The built `relocator` binary, run as a separate process.
@Suite struct MigrateCommandTests {
    func relocator(_ arguments: [String], environment extra: [String: String] = [:], in directory: URL? = nil) throws -> ProcessResult {
        var environment = ProcessInfo.processInfo.environment
        environment["DATABASE_URL"] = nil
        environment.merge(extra) { $1 }
        return try ProcessRunner.run(try TestEnvironment.relocatorBinary(), arguments, environment: environment, currentDirectory: directory)
    }

    @Test(arguments: Backend.allCases)
    func migrateAppliesTheFilesOnceThenReportsUpToDate(backend: Backend) throws {
        let test = try TestDatabase(backend)
        defer { test.drop() }
        let url = TestDatabase.text(test.url)
        let first = try relocator(["migrate"], environment: ["DATABASE_URL": url])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("applied 0001_original_tables"))
        #expect(first.stdout.contains("applied 0002_relocations"))
        let second = try relocator(["migrate", "--database-url", url])
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stdout.contains("up to date"))
        #expect(!second.stdout.contains("applied"))

        let seeded = try relocator(["levels", "--seed-default", "--json"], environment: ["DATABASE_URL": url])
        #expect(seeded.status == 0, "\(seeded.stderr)")
        #expect(seeded.stdout.contains("\"name\":\"gold\""))
        let again = try relocator(["levels", "--seed-default"], environment: ["DATABASE_URL": url])
        #expect(again.status != 0)
        #expect(again.stderr.contains("already has 3 rows"))
    }

    /// `RELOCATOR_SQL_TIMEOUT_MS` is read as every command starts: a bad value is one line naming
    /// it, and a non-zero exit, before anything is done.
    @Test func aBadSQLTimeoutIsRefusedByName() throws {
        for value in ["30s", "-1", "999999999999999999999"] {
            let result = try relocator(["levels"], environment: ["RELOCATOR_SQL_TIMEOUT_MS": value, "DATABASE_URL": "sqlite:/nonexistent/x.sqlite"])
            #expect(result.status != 0)
            #expect(result.stderr.contains("RELOCATOR_SQL_TIMEOUT_MS") && result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
        }
    }

    @Test func withoutADatabaseURLTheEmbeddedSQLiteFileIsUsed() throws {
        let directory = try TemporaryDirectory("relocator-cwd")
        defer { directory.remove() }
        let result = try relocator(["migrate"], in: directory.url)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(FileManager.default.fileExists(atPath: directory.path + "/relocator.sqlite"))
    }

    @Test(arguments: [Backend.postgres, .mysql])
    func aWrongPasswordFailsWithOneReadableLine(backend: Backend) throws {
        let test = try TestDatabase(backend)
        defer { test.drop() }
        let result = try relocator(["migrate", "--database-url", TestDatabase.text(test.withPassword("Wr0ng-Secret"))])
        #expect(result.status != 0)
        #expect(result.stderr.contains("authentication failed"))
        #expect(!result.stderr.contains("Wr0ng-Secret"))
        #expect(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count == 1)
    }

    @Test(arguments: [Backend.postgres, .mysql])
    func aRefusedConnectionFailsWithOneReadableLine(backend: Backend) throws {
        let test = try TestDatabase(backend)
        defer { test.drop() }
        let result = try relocator(["migrate"], environment: ["DATABASE_URL": TestDatabase.text(try test.refusedURL())])
        #expect(result.status != 0)
        #expect(result.stderr.contains("connection refused"))
        #expect(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count == 1)
    }

    @Test func aMalformedDatabaseURLNamesTheVariable() throws {
        let result = try relocator(["migrate"], environment: ["DATABASE_URL": "oracle://somewhere/db"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("DATABASE_URL"))
        #expect(result.stderr.contains("unknown scheme 'oracle'"))
    }

    @Test func aMissingMigrationsDirectoryIsAClearError() throws {
        let directory = try TemporaryDirectory("relocator-cwd")
        defer { directory.remove() }
        let result = try relocator(["migrate", "--migrations", directory.path + "/nowhere"], in: directory.url)
        #expect(result.status != 0)
        #expect(result.stderr.contains("nowhere/sqlite does not exist"))
    }
}
