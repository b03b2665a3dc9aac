import Foundation

/// One numbered SQL file of `migrations/<dialect>/NNNN_name.sql`.
public struct Migration: Sendable, Equatable {
    public var version: Int
    public var name: String
    public var statements: [String]

    public init(version: Int, name: String, statements: [String]) {
        self.version = version
        self.name = name
        self.statements = statements
    }

    /// `0001_original_tables`.
    public var id: String { String(format: "%04d_%@", version, name) }

    /// Reads every `NNNN_name.sql` of a directory, in version order.
    public static func load(directory: URL) throws -> [Migration] {
        let files: [String]
        do {
            files = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        } catch {
            throw SQLError(code: .migration, message: "cannot read the migrations directory \(directory.path)")
        }
        var migrations: [Migration] = []
        for file in files.sorted() where file.hasSuffix(".sql") {
            let stem = file.dropLast(4)
            guard let underscore = stem.firstIndex(of: "_"), let version = Int(stem[..<underscore]), version > 0 else {
                throw SQLError(code: .migration, message: "\(file): a migration file is named NNNN_name.sql")
            }
            if let clash = migrations.first(where: { $0.version == version }) {
                throw SQLError(code: .migration, message: "\(file) and \(clash.id).sql have the same number")
            }
            let text = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
            let statements = splitStatements(text)
            guard !statements.isEmpty else { throw SQLError(code: .migration, message: "\(file) holds no statement") }
            migrations.append(Migration(version: version, name: String(stem[stem.index(after: underscore)...]), statements: statements))
        }
        return migrations.sorted { $0.version < $1.version }
    }

    /// Splits SQL text into statements at a `;` that ends a line; drops `--` comment lines.
    /// (Migration files keep one statement per `;`-terminated block; no procedural bodies.)
    public static func splitStatements(_ text: String) -> [String] {
        var statements: [String] = []
        var current: [Substring] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
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
        return statements
    }

    /// Finds `migrations/<dialect>`: the given directory, else `./migrations`, else the checkout the
    /// binary was built in (`.build/<config>/relocator` → `../../migrations`), else an installed
    /// `<prefix>/share/relocator/migrations` beside `<prefix>/bin/relocator`.
    public static func locate(dialect: SQLDialect, explicit: String?) throws -> URL {
        if let explicit {
            let url = URL(fileURLWithPath: explicit).appendingPathComponent(dialect.rawValue)
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw SQLError(code: .migration, message: "\(url.path) does not exist")
            }
            return url
        }
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let candidates = [
            URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent("migrations"),
            executable.appendingPathComponent("../../migrations").standardized,
            executable.appendingPathComponent("../../../migrations").standardized,
            executable.appendingPathComponent("../share/relocator/migrations").standardized,
        ]
        for candidate in candidates {
            let url = candidate.appendingPathComponent(dialect.rawValue)
            if FileManager.default.fileExists(atPath: url.path) { return url }
        }
        throw SQLError(code: .migration, message: "no migrations/\(dialect.rawValue) directory found; pass --migrations DIR or set RELOCATOR_MIGRATIONS")
    }
}

/// Applies the migrations a database is missing, each in a transaction, recording each in
/// `schema_migrations`. Running it again changes nothing.
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

    /// Versions already applied.
    public func applied() throws -> Set<Int> {
        try prepare()
        let rows = try database.query("SELECT version FROM schema_migrations")
        return Set(try rows.map { try $0.decode("version", as: Int.self) })
    }

    public func pending() throws -> [Migration] {
        let done = try applied()
        return migrations.filter { !done.contains($0.version) }
    }

    /// Applies what is missing, in order, and returns what it applied.
    @discardableResult
    public func migrate() throws -> [Migration] {
        var appliedNow: [Migration] = []
        for migration in try pending() {
            try database.transaction {
                for statement in migration.statements {
                    do {
                        try database.executeScript(statement)
                    } catch var error as SQLError {
                        error.message = "\(migration.id).sql: \(error.message)"
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
}
