import ArgumentParser
import Foundation
import SQLStore

extension Relocator {
    struct Migrate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create or update the database tables (applies the missing migrations/<dialect>/*.sql)."
        )

        @OptionGroup var database: DatabaseOptions

        @Option(help: "The migrations directory, holding postgres/, mysql/ and sqlite/ (default: $RELOCATOR_MIGRATIONS, else found beside the binary or in ./migrations).")
        var migrations: String?

        func run() throws {
            let db = try database.open()
            defer { db.close() }
            let explicit = migrations ?? ProcessInfo.processInfo.environment["RELOCATOR_MIGRATIONS"].flatMap { $0.isEmpty ? nil : $0 }
            let directory = try Migration.locate(dialect: db.dialect, explicit: explicit)
            let migrator = Migrator(database: db, migrations: try Migration.load(directory: directory))
            let applied = try migrator.migrate()
            if applied.isEmpty {
                print("\(db.location): up to date (\(migrator.migrations.count) migrations)")
            } else {
                for migration in applied { print("\(db.location): applied \(migration.id)") }
            }
        }
    }
}
