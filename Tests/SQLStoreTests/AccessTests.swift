import Foundation
import RelocatorCore
import SQLStore
import Testing
import TestSupport

/// Open modes and the errors an operator can act on: a missing table, a missing file, a file or
/// directory the user may not read or write, a read-only filesystem.
@Suite struct AccessTests {
    /// Two connections in one process (the committer and its rebalancer): opening the second must
    /// not drop the first one's locks, or another process closing the database believes it is the
    /// last, deletes the WAL in use, and every later commit of the first connection is lost.
    @Test func aSecondConnectionInTheProcessKeepsTheFirstOnesCommitsVisible() throws {
        let directory = try TemporaryDirectory("relocator-wal")
        defer { directory.remove() }
        let path = directory.path + "/relocator.sqlite"
        let first = try openDatabase(.sqlite(path: path), access: .create)
        defer { first.close() }
        try first.executeScript("CREATE TABLE t (n INTEGER); INSERT INTO t VALUES (1)")
        let second = try openDatabase(.sqlite(path: path), access: .readWrite)
        second.close()
        let sqlite3 = URL(fileURLWithPath: "/usr/bin/sqlite3")
        // Another process opens and closes the database.
        #expect(try ProcessRunner.run(sqlite3, [path, "SELECT count(*) FROM t"]).stdout == "1\n")
        try first.executeScript("INSERT INTO t VALUES (2)")
        #expect(FileManager.default.fileExists(atPath: path + "-wal"))
        #expect(try ProcessRunner.run(sqlite3, [path, "SELECT count(*) FROM t"]).stdout == "2\n", "the second row was committed")
    }

    @Test(arguments: Backend.allCases)
    func aMissingTableSaysToRunMigrate(backend: Backend) throws {
        let test = try TestDatabase(backend)
        defer { test.drop() }
        let db = try test.open()
        defer { db.close() }
        let error = #expect(throws: SQLError.self) { try ContentStore(database: db).content(cid: 1) }
        #expect(error?.code == .schemaMissing)
        #expect(error?.description == "the database \(db.location) has no table 'contents': run `relocator migrate`")
        let levels = #expect(throws: SQLError.self) { try LevelStore(database: db).levels() }
        #expect(levels?.description == "the database \(db.location) has no table 'level': run `relocator migrate`")
    }

    @Test(arguments: [DatabaseAccess.readOnly, .readWrite])
    func onlyCreateAccessMakesAMissingSQLiteFile(access: DatabaseAccess) throws {
        let directory = try TemporaryDirectory("relocator-access")
        defer { directory.remove() }
        let path = directory.path + "/relocator.sqlite"
        let error = #expect(throws: SQLError.self) { try openDatabase(.sqlite(path: path), access: access) }
        #expect(error?.code == .databaseFileMissing)
        #expect(error?.description == "sqlite \(path): no database file here; run `relocator migrate` to create it")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)

        let created = try SQLiteDatabase(path: path, access: .create)
        #expect(created.createdFile)
        created.close()
        let again = try SQLiteDatabase(path: path, access: .create)
        #expect(!again.createdFile)
        again.close()
        try openDatabase(.sqlite(path: path), access: access).close()
    }

    /// A read-only connection leaves the file as it found it: no switch to WAL (which writes the
    /// header), no write at all.
    @Test func aReadOnlySQLiteConnectionWritesNothing() throws {
        let directory = try TemporaryDirectory("relocator-access")
        defer { directory.remove() }
        let path = directory.path + "/old.sqlite"
        do {
            // A database in the rollback-journal mode, as another program may have made it.
            let db = try SQLiteDatabase(path: path, access: .create)
            try db.executeScript("PRAGMA journal_mode=DELETE")
            try Migrator(database: db, migrations: Migration.embedded(dialect: .sqlite)).migrate()
            db.close()
        }
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(before[18] == 1 && before[19] == 1, "the file starts in rollback-journal mode")

        let db = try SQLiteDatabase(path: path, access: .readOnly)
        #expect(try ContentStore(database: db).contents().isEmpty)
        let write = #expect(throws: SQLError.self) {
            try db.execute("INSERT INTO level (content_level, min_counts, max_counts) VALUES (\("gold"), \(1), \(2))")
        }
        #expect(write?.code == .permissionDenied)
        db.close()
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["old.sqlite"])
    }

    @Test(arguments: [Backend.postgres, .mysql])
    func aReadOnlyServerSessionRefusesWrites(backend: Backend) throws {
        let test = try TestDatabase(backend)
        defer { test.drop() }
        let writer = try test.open(access: .readWrite)
        defer { writer.close() }
        try Migrator(database: writer, migrations: test.migrations()).migrate()
        let reader = try test.open(access: .readOnly)
        defer { reader.close() }
        #expect(try LevelStore(database: reader).levels().isEmpty)
        let error = #expect(throws: SQLError.self) { try LevelStore(database: reader).seed(LevelRange.defaults) }
        #expect(error?.code == .permissionDenied)
        #expect(try LevelStore(database: writer).levels().isEmpty)
    }

    @Test func aReadOnlyFilesystemIsNamedForWritersAndStillReadable() throws {
        let mount = try TmpfsMount(sizeKiB: 4096)
        defer { mount.remove() }
        let path = mount.path + "/relocator.sqlite"
        try Migrator.migrate(.sqlite(path: path))
        try mount.remount(readOnly: true)

        for access in [DatabaseAccess.readWrite, .create] {
            let error = #expect(throws: SQLError.self) { try openDatabase(.sqlite(path: path), access: access) }
            #expect(error?.code == .permissionDenied)
            #expect(error?.description == "sqlite \(path): cannot open the database file for writing: Read-only file system (EROFS)")
        }
        let reader = try openDatabase(.sqlite(path: path), access: .readOnly)
        defer { reader.close() }
        #expect(try LevelStore(database: reader).levels().isEmpty)
    }

    // MARK: - As an unprivileged user

    /// A directory only root may enter, a root-owned file, a directory only root may write: for
    /// `nobody` each is one line naming the path and EACCES.
    @Test func permissionProblemsNameThePathAndTheErrno() async throws {
        let directory = try TemporaryDirectory("relocator-access")
        defer { directory.remove() }
        chmod(directory.path, 0o755)
        func database(in name: String, mode: mode_t) throws -> String {
            let path = directory.path + "/\(name)/db.sqlite"
            try FileManager.default.createDirectory(atPath: directory.path + "/\(name)", withIntermediateDirectories: false)
            try Migrator.migrate(.sqlite(path: path))
            chmod(path, 0o644)
            chmod(directory.path + "/\(name)", mode)
            return path
        }
        let closed = try database(in: "closed", mode: 0o700)  // nobody may not enter
        let shared = try database(in: "shared", mode: 0o755)  // nobody may read, not write
        let open = try database(in: "open", mode: 0o777)      // nobody may write the directory, not the file
        let newFile = directory.path + "/shared/new.sqlite"

        let outcomes = try await Self.asNobody { () -> [String] in
            var lines: [String] = []
            for (path, access) in [(closed, DatabaseAccess.readOnly), (shared, .readWrite), (newFile, .create), (shared, .readOnly),
                                   (open, .readOnly)] {
                do {
                    let db = try openDatabase(.sqlite(path: path), access: access)
                    defer { db.close() }
                    lines.append("read \(try LevelStore(database: db).levels().count) levels")
                } catch {
                    lines.append("\(error)")
                }
            }
            return lines
        }
        #expect(outcomes == [
            "sqlite \(closed): cannot open the database file for reading: Permission denied (EACCES)",
            "sqlite \(shared): cannot open the database file for writing: Permission denied (EACCES)",
            "sqlite \(newFile): cannot create the database file: Permission denied (EACCES)",
            "sqlite \(shared): cannot read the database: its shared-memory file \(shared)-shm is not there and this user may not create it in \(directory.path)/shared (EACCES); a database in WAL mode needs one",
            "read 0 levels",
        ])
        #expect(!FileManager.default.fileExists(atPath: newFile))
    }

    /// Runs `body` on a thread of its own whose filesystem user and group are `nobody`: the
    /// kernel checks that thread's file access as it would an unprivileged process's (changing the
    /// filesystem uid drops the capabilities that let root ignore permission bits, for that
    /// thread only), while the rest of the test process stays root.
    static func asNobody<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await BlockingExecutor.onThread(named: "as-nobody") {
            let nobody: UInt32 = 65534
            _ = setfsgid(nobody)
            _ = setfsuid(nobody)
            defer {
                _ = setfsuid(0)
                _ = setfsgid(0)
            }
            // setfsuid answers the previous id: asking again with an invalid one reads the current.
            guard setfsuid(UInt32.max) == Int32(nobody), setfsgid(UInt32.max) == Int32(nobody) else {
                throw POSIXError(.EPERM, userInfo: [NSLocalizedDescriptionKey: "cannot switch the thread's filesystem ids to nobody"])
            }
            return try body()
        }
    }
}

/// glibc's per-thread `setfsuid(2)` / `setfsgid(2)` (not exported by the Glibc module).
@_silgen_name("setfsuid") private func setfsuid(_ uid: UInt32) -> Int32
@_silgen_name("setfsgid") private func setfsgid(_ gid: UInt32) -> Int32
