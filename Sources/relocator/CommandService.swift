import Foundation
import Logging
import RelocatorApp
import RelocatorServices

/// The application for an operator's command: wired as `serve` wires it (`makeService`), from the
/// command's own options or, for a command without them, from the environment alone. It logs
/// nothing of its own: the command prints what it did. Queue and database connections open on
/// first use, so a command that reads only the database never reaches Redis.
func makeCommandService(_ runtime: RuntimeOptions? = nil, database: DatabaseOptions? = nil, access: Composition.DatabaseAccess,
                        requireDatabase: Bool = true) throws -> App {
    try makeService(try runtime ?? RuntimeOptions.parse([]), try database ?? DatabaseOptions.parse([]), access: access,
                    requireDatabase: requireDatabase, logger: Logger(label: "relocator.command", factory: { _ in SwiftLogNoOpLogHandler() }))
}
