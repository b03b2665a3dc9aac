@testable import SQLStore
import Testing

/// How a failed connection to PostgreSQL is classified: what is only a server not ready yet is
/// "unavailable, try again" to every caller (the API's 503), never an internal error.
@Suite struct PostgresErrorTests {
    @Test func aServerStartingUpIsRefusingConnectionsForNow() {
        for message in [
            "connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  the database system is starting up",
            "connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  the database system is in recovery mode",
            "connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  the database system is not yet accepting connections",
            "connection to server at \"127.0.0.1\", port 5432 failed: Connection refused",
        ] {
            #expect(PostgresDatabase.classifyConnectFailure(message) == .connectionRefused, "\(message)")
        }
        #expect(PostgresDatabase.classifyConnectFailure("FATAL:  the database system is shutting down") == .connectionLost)
        #expect(PostgresDatabase.classifyConnectFailure("FATAL:  password authentication failed for user \"x\"") == .authenticationFailed)
        #expect(PostgresDatabase.classifyConnectFailure("something else entirely") == .other)
    }
}
