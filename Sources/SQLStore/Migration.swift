import Foundation
import RelocatorCore

/// One numbered SQL file: `NNNN_name.sql`, or `NNNN_name.<dialect>.sql` as the files compiled into
/// the binary are named (Sources/SQLStore/Migrations/<dialect>/).
///
/// A file is statements separated by a `;` that ends a line; `--` lines are comments. A statement
/// introduced by two directive comments is a *precondition*, run before the others in the
/// migration's transaction: every row it returns is a problem an operator must fix first, and the
/// migration is refused (nothing applied) while it returns any.
///
/// ```sql
/// -- @precondition: filenames that belong to more than one content
/// -- @fix: give each of those contents its own filename, then run `relocator migrate` again
/// SELECT filename, … AS cids FROM contents GROUP BY filename HAVING COUNT(*) > 1;
/// ```
public struct Migration: Sendable, Equatable {
    public var version: Int
    public var name: String
    public var statements: [String]
    public var preconditions: [Precondition]

    /// A query whose rows are problems that stop the migration.
    public struct Precondition: Sendable, Equatable {
        /// What each row is (`filenames that belong to more than one content`).
        public var problem: String
        /// What the operator does about it.
        public var fix: String
        public var query: String

        public init(problem: String, fix: String, query: String) {
            self.problem = problem
            self.fix = fix
            self.query = query
        }
    }

    public init(version: Int, name: String, statements: [String], preconditions: [Precondition] = []) {
        self.version = version
        self.name = name
        self.statements = statements
        self.preconditions = preconditions
    }

    /// `0001_original_tables`.
    public var id: String { Self.id(version: version, name: name) }

    static func id(version: Int, name: String) -> String { String(format: "%04d_%@", version, name) }

    // MARK: - Where migrations come from

    /// The migrations compiled into the binary for a dialect, in version order.
    public static func embedded(dialect: SQLDialect) -> [Migration] {
        embeddedMigrations[dialect] ?? []
    }

    /// The migrations for a dialect: `<directory>/<dialect>/` when a directory is given (an
    /// operator's `--migrations DIR` or `RELOCATOR_MIGRATIONS`), else the ones compiled in.
    public static func forDialect(_ dialect: SQLDialect, directory: String?) throws -> [Migration] {
        try load(locate(dialect: dialect, explicit: directory))
    }

    /// Where a dialect's migrations come from.
    public enum Source: Sendable, Equatable {
        case embedded(SQLDialect)
        case directory(URL)
    }

    /// `<explicit>/<dialect>` (which must exist) when a directory is given, else the embedded files.
    public static func locate(dialect: SQLDialect, explicit: String?) throws -> Source {
        guard let explicit else { return .embedded(dialect) }
        let url = URL(fileURLWithPath: explicit).appendingPathComponent(dialect.rawValue)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw SQLError(code: .migration, message: "\(url.path) does not exist")
        }
        return .directory(url)
    }

    public static func load(_ source: Source) throws -> [Migration] {
        switch source {
        case .embedded(let dialect): return embedded(dialect: dialect)
        case .directory(let url): return try load(directory: url)
        }
    }

    /// Reads every `NNNN_name.sql` (or `NNNN_name.<dialect>.sql`) of a directory, in version order.
    public static func load(directory: URL) throws -> [Migration] {
        let files: [String]
        do {
            files = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        } catch {
            throw SQLError(code: .migration, message: "cannot read the migrations directory \(directory.path)")
        }
        var texts: [(file: String, text: String)] = []
        for file in files.sorted() where file.hasSuffix(".sql") {
            let data: Data
            do {
                data = try Data(contentsOf: directory.appendingPathComponent(file))
            } catch {
                throw SQLError(code: .migration, message: "cannot read \(directory.appendingPathComponent(file).path)")
            }
            guard let text = String(data: data, encoding: .utf8) else {
                throw SQLError(code: .migration, message: "\(file) is not UTF-8 text")
            }
            texts.append((file, text))
        }
        return try parse(files: texts)
    }

    /// Parses files into migrations sorted by version; refuses two files with one number.
    static func parse(files: [(file: String, text: String)]) throws -> [Migration] {
        var migrations: [Migration] = []
        for (file, text) in files {
            let migration = try parse(file: file, text: text)
            if let clash = migrations.first(where: { $0.version == migration.version }) {
                throw SQLError(code: .migration, message: "\(file) and \(clash.id) have the same number")
            }
            migrations.append(migration)
        }
        return migrations.sorted { $0.version < $1.version }
    }

    /// One file: its version and name from the file name, its statements and preconditions.
    public static func parse(file: String, text: String) throws -> Migration {
        guard file.hasSuffix(".sql") else { throw SQLError(code: .migration, message: "\(file): a migration file is named NNNN_name.sql") }
        var stem = file.dropLast(4)
        if let dot = stem.lastIndex(of: "."), SQLDialect(rawValue: String(stem[stem.index(after: dot)...])) != nil {
            stem = stem[..<dot]
        }
        guard let underscore = stem.firstIndex(of: "_"), let version = Int(stem[..<underscore]), version > 0,
              stem.index(after: underscore) < stem.endIndex, !stem.contains(".")
        else {
            throw SQLError(code: .migration, message: "\(file): a migration file is named NNNN_name.sql")
        }
        let blocks: [Block]
        do {
            blocks = try Self.blocks(text)
        } catch let error as DirectiveError {
            throw SQLError(code: .migration, message: "\(file): \(error.message)")
        }
        let statements = blocks.compactMap { $0.precondition == nil ? $0.sql : nil }
        guard !statements.isEmpty else { throw SQLError(code: .migration, message: "\(file) holds no statement") }
        let preconditions = blocks.compactMap { block in
            block.precondition.map { Precondition(problem: $0.problem, fix: $0.fix, query: block.sql) }
        }
        return Migration(version: version, name: String(stem[stem.index(after: underscore)...]),
                         statements: statements, preconditions: preconditions)
    }

    /// Splits SQL text into statements at a `;` that ends a line; drops `--` comment lines.
    /// (Migration files keep one statement per `;`-terminated block; no procedural bodies.)
    public static func splitStatements(_ text: String) -> [String] {
        Self.lines(text).statements
    }

    private struct Block {
        var sql: String
        var precondition: (problem: String, fix: String)?
    }

    private struct DirectiveError: Error { var message: String }

    private static func blocks(_ text: String) throws -> [Block] {
        let (statements, directives) = lines(text)
        var blocks: [Block] = []
        for (index, sql) in statements.enumerated() {
            let found = directives[index] ?? [:]
            if let unknown = found.keys.first(where: { $0 != "precondition" && $0 != "fix" }) {
                throw DirectiveError(message: "unknown directive '-- @\(unknown)'")
            }
            switch (found["precondition"], found["fix"]) {
            case (nil, nil): blocks.append(Block(sql: sql))
            case (let problem?, let fix?): blocks.append(Block(sql: sql, precondition: (problem, fix)))
            default: throw DirectiveError(message: "a precondition needs both '-- @precondition: …' and '-- @fix: …'")
            }
        }
        if directives.keys.contains(where: { $0 >= statements.count }) {
            throw DirectiveError(message: "a '-- @…' directive is not followed by a statement")
        }
        return blocks
    }

    /// The statements, and the `-- @key: value` directives written before each (by statement index).
    private static func lines(_ text: String) -> (statements: [String], directives: [Int: [String: String]]) {
        var statements: [String] = []
        var directives: [Int: [String: String]] = [:]
        var current: [Substring] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("-- @") {
                let body = trimmed.dropFirst(4)
                let key = body.prefix { $0 != ":" }
                let value = body.dropFirst(key.count + 1).trimmingCharacters(in: .whitespaces)
                directives[statements.count, default: [:]][String(key).trimmingCharacters(in: .whitespaces)] = value
                continue
            }
            if trimmed.hasPrefix("--") || trimmed.isEmpty { continue }
            if trimmed.hasSuffix(";") {
                current.append(line[..<line.lastIndex(of: ";")!])
                statements.append(current.joined(separator: "\n"))
                current = []
            } else {
                current.append(line)
            }
        }
        let rest = current.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
        if !rest.isEmpty { statements.append(rest) }
        return (statements, directives)
    }
}

/// Where a database stands against the migrations this binary knows.
public struct MigrationStatus: Sendable, Equatable, Codable {
    /// The migrations recorded in `schema_migrations`, in version order (`0001_original_tables`).
    public var applied: [String]
    /// The migrations this binary knows that the database has not applied, in order.
    public var pending: [String]
    /// Applied migrations this binary does not know (a newer binary migrated the database).
    public var unknown: [String]
    /// The newest migration this binary knows, and its version (0 when it knows none).
    public var latestKnown: String?
    public var latestKnownVersion: Int
    /// False when the database has no `schema_migrations` table: it was never migrated.
    public var schemaPresent: Bool

    /// The schema is there and holds every migration this binary knows: ready to serve.
    public var isCurrent: Bool { schemaPresent && pending.isEmpty }

    enum CodingKeys: String, CodingKey {
        case applied, pending, unknown
        case latestKnown = "latest_known"
        case latestKnownVersion = "latest_known_version"
        case schemaPresent = "schema_present"
    }

    /// One line for logs and `/readyz`.
    public var summary: String {
        let version = applied.last.map { "version \($0)" } ?? "no version"
        if !schemaPresent { return "no schema: run `relocator migrate`" }
        if !pending.isEmpty {
            let shown = pending.prefix(5).joined(separator: ", ") + (pending.count > 5 ? ", …" : "")
            return "schema at \(version), \(pending.count) migration\(pending.count == 1 ? "" : "s") pending (\(shown)): run `relocator migrate`"
        }
        if !unknown.isEmpty { return "schema at \(version), newer than this binary (\(latestKnown ?? "none") is the latest it knows)" }
        return "schema at \(version), the latest this binary knows"
    }
}

/// Applies the migrations a database is missing, each in a transaction, recording each in
/// `schema_migrations`. Running it again changes nothing.
///
/// A migration's preconditions run first, in its transaction: when one returns rows the migration
/// is refused with an error listing them and nothing of it is applied.
///
/// MySQL commits DDL statements implicitly, so there a file is not atomic; the files use
/// `IF NOT EXISTS` so that a file interrupted half-way can simply run again.
public struct Migrator {
    public let database: any SQLDatabase
    public let migrations: [Migration]

    public init(database: any SQLDatabase, migrations: [Migration]) {
        self.database = database
        self.migrations = migrations
    }

    /// Creates `schema_migrations` if it is missing. The migrator owns this table: it must exist
    /// before any file can be recorded.
    public func prepare() throws {
        let d = database.dialect
        try database.executeScript("""
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version \(d.typeName(.bigint)) PRIMARY KEY,
                name VARCHAR(255) NOT NULL,
                applied_at \(d.typeName(.timestamp)) NOT NULL
            )
            """)
    }

    /// Versions already applied (creates `schema_migrations` when it is missing).
    public func applied() throws -> Set<Int> {
        try prepare()
        return Set(try recorded().map(\.version))
    }

    public func pending() throws -> [Migration] {
        let done = try applied()
        return migrations.filter { !done.contains($0.version) }
    }

    /// Where the database stands, without writing anything (a read-only connection will do).
    public func status() throws -> MigrationStatus {
        let rows: [(version: Int, name: String)]
        var present = true
        do {
            rows = try recorded()
        } catch let error as SQLError where error.code == .schemaMissing {
            rows = []
            present = false
        }
        let done = Set(rows.map(\.version))
        let known = Set(migrations.map(\.version))
        let latest = migrations.max { $0.version < $1.version }
        return MigrationStatus(
            applied: rows.map { Migration.id(version: $0.version, name: $0.name) },
            pending: migrations.filter { !done.contains($0.version) }.map(\.id),
            unknown: rows.filter { !known.contains($0.version) }.map { Migration.id(version: $0.version, name: $0.name) },
            latestKnown: latest?.id, latestKnownVersion: latest?.version ?? 0, schemaPresent: present)
    }

    private func recorded() throws -> [(version: Int, name: String)] {
        try database.query("SELECT version, name FROM schema_migrations ORDER BY version").map {
            (try $0.decode("version"), try $0.decode("name"))
        }
    }

    /// Applies what is missing, in order, and returns what it applied.
    @discardableResult
    public func migrate() throws -> [Migration] {
        var appliedNow: [Migration] = []
        for migration in try pending() {
            try database.transaction {
                for precondition in migration.preconditions {
                    let rows: [SQLRow]
                    do {
                        rows = try database.query(SQLQuery(unsafeSQL: precondition.query))
                    } catch var error as SQLError {
                        error.message = "\(migration.id): precondition: \(error.message)"
                        throw error
                    }
                    if !rows.isEmpty {
                        throw SQLError(code: .migration, location: database.location,
                                       message: Self.refusal(migration: migration, precondition: precondition, rows: rows))
                    }
                }
                for statement in migration.statements {
                    do {
                        try database.executeScript(statement)
                    } catch var error as SQLError {
                        error.message = "\(migration.id): \(error.message)"
                        throw error
                    }
                }
                try database.execute("""
                    INSERT INTO schema_migrations (version, name, applied_at)
                    VALUES (\(migration.version), \(migration.name), \(now: ()))
                    """)
            }
            appliedNow.append(migration)
        }
        return appliedNow
    }

    /// How many problem rows a refusal lists before it says how many more there are.
    public static let refusalListLimit = 20

    /// `0003_unique_filenames not applied: 2 filenames that belong to more than one content:
    /// filename 'a.mp4' (cids 1, 7), filename 'b.mp4' (cids 2, 3); fix: …` — one line. Each row is
    /// shown as its first column's name and quoted value, then the other columns in parentheses.
    public static func refusal(migration: Migration, precondition: Migration.Precondition, rows: [SQLRow]) -> String {
        let shown = rows.prefix(refusalListLimit).map { row -> String in
            guard let first = row.columns.first else { return "(a row)" }
            let rest = zip(row.columns, row.values).dropFirst().map { "\($0) \(Shown.text($1.description))" }
            return "\(first) '\(Shown.text(row[first].description))'" + (rest.isEmpty ? "" : " (\(rest.joined(separator: "; ")))")
        }
        let more = rows.count > refusalListLimit ? ", and \(rows.count - refusalListLimit) more" : ""
        return "\(migration.id) not applied: \(rows.count) \(precondition.problem): \(shown.joined(separator: ", "))\(more); fix: \(precondition.fix)"
    }


    /// What `Migrator.migrate(_:directory:)` did.
    public struct Run: Sendable {
        public var location: String
        public var applied: [String]
        public var status: MigrationStatus
    }

    /// `relocator migrate`: loads the migrations (from `directory`, else the embedded ones), opens
    /// the database with `.create` access, applies what is missing and reports where it stands. A
    /// SQLite file this call created is removed again when the migration fails.
    @discardableResult
    public static func migrate(_ url: DatabaseURL, directory: String? = nil) throws -> Run {
        let migrations = try Migration.forDialect(SQLDialect(url), directory: directory)
        let database = try openDatabase(url, access: .create)
        do {
            let migrator = Migrator(database: database, migrations: migrations)
            let applied = try migrator.migrate()
            let status = try migrator.status()
            database.close()
            return Run(location: database.location, applied: applied.map(\.id), status: status)
        } catch {
            database.close()
            if let sqlite = database as? SQLiteDatabase {
                do {
                    try sqlite.removeCreatedFile()
                } catch let removal {
                    throw SQLError(code: .other, location: database.location, message: "\(error); and then \(removal)")
                }
            }
            throw error
        }
    }
}
