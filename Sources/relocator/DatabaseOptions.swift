import ArgumentParser
import Foundation
import RelocatorCore

/// Where the SQL database is: `--database-url`, else `DATABASE_URL`, else the SQLite file
/// `relocator.sqlite` in the working directory.
struct DatabaseOptions: ParsableArguments {
    @Option(name: .customLong("database-url"),
            help: "postgres://user:password@host:port/db, mysql://user:password@host:port/db or sqlite:path (default: $DATABASE_URL, else sqlite:relocator.sqlite in the working directory).")
    var databaseURL: String?

    var environment: [String: String] { ProcessInfo.processInfo.environment }

    /// The URL and the setting it came from.
    func resolved() throws -> (url: DatabaseURL, setting: String?) {
        if let flag = databaseURL { return (try DatabaseURL(parsing: flag, setting: "--database-url"), "--database-url") }
        if let value = environment["DATABASE_URL"], !value.isEmpty { return (try DatabaseURL(parsing: value), "DATABASE_URL") }
        return (.defaultSQLite, nil)
    }

    func resolve() throws -> DatabaseURL { try resolved().url }

    static var noDatabase: CommandFailure {
        CommandFailure("no database: DATABASE_URL is not set and there is no relocator.sqlite in \(FileManager.default.currentDirectoryPath); "
                       + "run `relocator migrate` to create it here, or set DATABASE_URL (or --database-url)")
    }
}
