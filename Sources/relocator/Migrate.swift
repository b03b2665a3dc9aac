import ArgumentParser
import Foundation
import RelocatorServices

extension Relocator {
    struct Migrate: ParsableCommand, LoggedCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create or update the database tables.",
            discussion: """
                Applies the migrations the database has not seen, in order, each in a transaction; running it again \
                changes nothing. The migrations are compiled into the binary; --migrations (or RELOCATOR_MIGRATIONS) \
                reads them from a directory holding postgres/, mysql/ and sqlite/ instead. Creates the SQLite file \
                when it is missing, and removes it again when the migration fails.
                """)

        @OptionGroup var database: DatabaseOptions
        @OptionGroup var logging: LogOptions

        @Option(help: "A directory holding postgres/, mysql/ and sqlite/ with NNNN_name.sql files (default: $RELOCATOR_MIGRATIONS, else the migrations compiled into the binary).")
        var migrations: String?

        func run() throws {
            if migrations?.isEmpty == true { throw CommandFailure("--migrations names no directory") }
            let explicit = migrations ?? ProcessInfo.processInfo.environment["RELOCATOR_MIGRATIONS"].flatMap { $0.isEmpty ? nil : $0 }
            let run = try Composition.migrate(try database.resolve(), directory: explicit)
            for id in run.applied { print("\(run.location): applied \(id)") }
            print("\(run.location): \(run.applied.isEmpty ? "up to date, " : "")\(run.summary)")
        }
    }
}
