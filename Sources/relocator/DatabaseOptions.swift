import ArgumentParser
import Foundation
import RelocatorCore
import SQLStore

/// Where the SQL database is: `--database-url`, else `DATABASE_URL`, else SQLite in the working
/// directory.
struct DatabaseOptions: ParsableArguments {
    @Option(name: .customLong("database-url"),
            help: "postgres://…, mysql://… or sqlite:path (default: $DATABASE_URL, else sqlite:relocator.sqlite).")
    var databaseURL: String?

    func resolve(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> DatabaseURL {
        if let flag = databaseURL { return try DatabaseURL(parsing: flag, setting: "--database-url") }
        if let value = environment["DATABASE_URL"], !value.isEmpty { return try DatabaseURL(parsing: value) }
        return .defaultSQLite
    }

    func open() throws -> any SQLDatabase {
        try openDatabase(resolve())
    }
}
