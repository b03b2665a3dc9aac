import Foundation
import HummingbirdTesting
import SQLStore
import Testing
import TestSupport
@testable import RelocatorAPI

/// Readiness over a real SQLite file whose schema is behind the binary's migrations, and Redis.
/// (RelocatorAPITests: the same answer from a memory store that reports a schema behind.)
@Suite struct SQLReadinessAPITests {
    @Test func readinessIs503UntilTheSchemaIsCurrentAndSaysWhatIsMissing() async throws {
        let api = try APIFixture(migrate: false)
        defer { api.tearDown() }
        let db = try openDatabase(api.databaseURL, access: .readWrite)
        try Migrator(database: db, migrations: Array(Migration.embedded(dialect: .sqlite).prefix(2))).migrate()
        db.close()
        try await api.test { client in
            let behind = try await client.get("/readyz")
            #expect(behind.status == .serviceUnavailable && behind.json?["redis"] as? String == "ok")
            let latest = try #require(Migration.embedded(dialect: .sqlite).last?.id.prefix(4))
            #expect(behind.json?["database"] as? String == "schema at 0002, this binary needs \(latest): run relocator migrate")
        }
        let full = try openDatabase(api.databaseURL, access: .readWrite)
        try Migrator(database: full, migrations: Migration.embedded(dialect: .sqlite)).migrate()
        full.close()
        try await api.test { client in
            let ready = try await client.get("/readyz")
            #expect(ready.status == .ok && ready.json?["status"] as? String == "ready", "\(ready.text)")
        }
    }
}
