import Foundation
import Testing
import TestSupport

/// What commands do to the database: read-only commands open it read-only and never create it,
/// only `migrate` creates a SQLite file (and removes it again when it fails), an unmigrated
/// database says to run `relocator migrate`, permission problems name the path and the errno.
@Suite struct DatabaseAccessTests {
    static let readOnlyCommands: [[String]] = [
        ["levels"], ["levels", "--json"], ["status"], ["relocations"], ["contents", "list"], ["pause", "gold"],
    ]

    @Test(arguments: readOnlyCommands)
    func withoutADatabaseURLReadOnlyCommandsNeverCreateTheFileAndSayHowToMakeOne(arguments: [String]) throws {
        let cli = try CLIWorkspace(redis: CLIWorkspace.noRedis)
        defer { cli.stop() }
        let result = try cli.run(arguments)
        #expect(result.status == 1, "\(result.stdout)\(result.stderr)")
        #expect(result.errorLines.count == 1, "\(result.stderr)")
        #expect(result.stderr.contains("no database: DATABASE_URL is not set and there is no relocator.sqlite in \(cli.path)"), "\(result.stderr)")
        #expect(result.stderr.contains("run `relocator migrate`"))
        #expect(!FileManager.default.fileExists(atPath: cli.databasePath))
    }

    @Test func reconcileWithoutFixNeverCreatesTheFileEither() throws {
        let cli = try CLIWorkspace(redis: CLIWorkspace.noRedis)
        defer { cli.stop() }
        cli.environment["RELOCATOR_LEVELS"] = try cli.makeLevels()
        let result = try cli.run(["reconcile"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("no database"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: cli.databasePath))
    }

    @Test(arguments: [["levels"], ["contents", "list"], ["relocations"], ["status"], ["contents", "add", "--cid", "1", "--filename", "a", "--level", "gold"]])
    func commandsOnAnUnmigratedDatabaseSayToRunMigrate(arguments: [String]) throws {
        let cli = try CLIWorkspace(redis: CLIWorkspace.noRedis)
        defer { cli.stop() }
        #expect(FileManager.default.createFile(atPath: cli.databasePath, contents: Data()))
        let result = try cli.run(arguments)
        #expect(result.status == 1)
        #expect(result.errorLines.count == 1, "\(result.stderr)")
        #expect(result.stderr.contains("has no table"), "\(result.stderr)")
        #expect(result.stderr.contains("run `relocator migrate`"), "\(result.stderr)")
    }

    @Test func aFailedMigrateLeavesNoDatabaseFileBehind() throws {
        let cli = try CLIWorkspace(redis: CLIWorkspace.noRedis)
        defer { cli.stop() }
        let migrations = cli.path + "/broken/sqlite"
        try FileManager.default.createDirectory(atPath: migrations, withIntermediateDirectories: true)
        try "CREATE TABLE first (id INTEGER);\nCREATE TABLEX oops;\n".write(toFile: migrations + "/0001_broken.sql", atomically: true, encoding: .utf8)
        let result = try cli.run(["migrate", "--migrations", cli.path + "/broken"])
        #expect(result.status == 1)
        #expect(result.errorLines.count == 1, "\(result.stderr)")
        #expect(result.stderr.contains("0001_broken"), "\(result.stderr)")
        let left = try FileManager.default.contentsOfDirectory(atPath: cli.path).filter { $0.hasPrefix("relocator.sqlite") }
        #expect(left.isEmpty, "\(left)")
    }

    @Test func migrateSaysWhereTheSchemaStands() throws {
        let cli = try CLIWorkspace(redis: CLIWorkspace.noRedis)
        defer { cli.stop() }
        let first = try cli.run(["migrate"])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("applied 0001_original_tables"))
        #expect(first.lines.last?.contains("the latest this binary knows") == true, "\(first.stdout)")
        let again = try cli.run(["migrate"])
        #expect(again.stdout.contains("up to date"), "\(again.stdout)")
    }

    // MARK: - As an unprivileged user

    /// A database file nobody may write, in a directory nobody may write to: the read-only
    /// commands work; a command that writes names the path and EACCES.
    @Test func aReadOnlyDatabaseFileServesTheReadOnlyCommandsOfAnUnprivilegedUser() throws {
        let cli = try CLIWorkspace()
        defer { cli.stop() }
        let directory = cli.path + "/data"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let url = "sqlite:\(directory)/relocator.sqlite"
        cli.environment["DATABASE_URL"] = url
        #expect(try cli.run(["migrate"]).status == 0)
        #expect(try cli.run(["levels", "--seed-default"]).status == 0)
        #expect(try cli.run(["contents", "add", "--cid", "7", "--filename", "g.mp4", "--level", "silver"]).status == 0)
        chmod(directory + "/relocator.sqlite", 0o444)
        // WAL needs a shared-memory file beside the database: nobody may create it there.
        chmod(directory, 0o777)

        for arguments in [["levels"], ["contents", "list"], ["relocations"], ["status"]] {
            let result = try cli.runAsNobody(arguments)
            #expect(result.status == 0, "\(arguments): \(result.stderr)")
        }
        let levels = try cli.runAsNobody(["levels"])
        #expect(levels.stdout.contains("silver  1000"), "\(levels.stdout)")
        let write = try cli.runAsNobody(["contents", "add", "--cid", "8", "--filename", "h.mp4", "--level", "gold"])
        #expect(write.status == 1)
        #expect(write.stderr.contains("\(directory)/relocator.sqlite"), "\(write.stderr)")
        #expect(write.stderr.contains("EACCES"), "\(write.stderr)")
    }

    @Test func aDatabaseInADirectoryTheUserCannotReadNamesThePathAndTheErrno() throws {
        let cli = try CLIWorkspace()
        defer { cli.stop() }
        let directory = cli.path + "/closed"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        cli.environment["DATABASE_URL"] = "sqlite:\(directory)/relocator.sqlite"
        #expect(try cli.run(["migrate"]).status == 0)
        chmod(directory, 0o700)
        let result = try cli.runAsNobody(["levels"])
        #expect(result.status == 1)
        #expect(result.errorLines.count == 1, "\(result.stderr)")
        #expect(result.stderr.contains("sqlite \(directory)/relocator.sqlite: cannot open the database file for reading: Permission denied (EACCES)"),
                "\(result.stderr)")
    }
}
