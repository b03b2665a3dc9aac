import Foundation
import RelocatorCore
import SQLStore

/// The three SQL backends, each test in a database of its own.
public enum Backend: String, CaseIterable, Sendable, CustomStringConvertible {
    case sqlite, postgres, mysql
    public var description: String { rawValue }
}

/// A fresh, empty database on one backend, dropped by `drop()`.
public final class TestDatabase: @unchecked Sendable {
    public let backend: Backend
    public let url: DatabaseURL
    private let admin: DatabaseURL?
    private let name: String
    private let directory: TemporaryDirectory?

    public init(_ backend: Backend) throws {
        self.backend = backend
        name = TestEnvironment.uniqueName("relocator_t")
        switch backend {
        case .sqlite:
            let dir = try TemporaryDirectory("relocator-sqlite")
            directory = dir
            admin = nil
            url = .sqlite(path: dir.path + "/test.sqlite")
        case .postgres, .mysql:
            directory = nil
            let variable = backend == .postgres ? "RELOCATOR_TEST_POSTGRES_URL" : "RELOCATOR_TEST_MYSQL_URL"
            let adminURL = try DatabaseURL(parsing: TestEnvironment.value(variable), setting: variable)
            admin = adminURL
            let db = try openDatabase(adminURL, access: .readWrite)
            defer { db.close() }
            try db.executeScript("CREATE DATABASE \(db.dialect.quote(name))")
            switch adminURL {
            case .postgres(var server): server.database = name; url = .postgres(server)
            case .mysql(var server): server.database = name; url = .mysql(server)
            case .sqlite: fatalError("unreachable")
            }
        }
    }

    /// The same server with another password.
    public func withPassword(_ password: String) -> DatabaseURL {
        switch url {
        case .postgres(var server): server.password = password; return .postgres(server)
        case .mysql(var server): server.password = password; return .mysql(server)
        case .sqlite: return url
        }
    }

    /// The same server's host with a port where nothing listens.
    public func refusedURL() throws -> DatabaseURL {
        let port = try freeLoopbackPort()
        switch url {
        case .postgres(var server): server.port = port; return .postgres(server)
        case .mysql(var server): server.port = port; return .mysql(server)
        case .sqlite: return .sqlite(path: "/nonexistent-relocator-dir/\(name)/db.sqlite")
        }
    }

    /// The URL as text, for `--database-url`.
    public static func text(_ url: DatabaseURL) -> String {
        switch url {
        case .sqlite(let path): return "sqlite:\(path)"
        case .postgres(let s), .mysql(let s):
            let scheme = if case .postgres = url { "postgres" } else { "mysql" }
            let user = s.user?.addingPercentEncoding(withAllowedCharacters: .urlUserAllowed) ?? ""
            let password = s.password.map { ":" + ($0.addingPercentEncoding(withAllowedCharacters: .urlPasswordAllowed) ?? "") } ?? ""
            return "\(scheme)://\(user)\(password)@\(s.host):\(s.port)/\(s.database)"
        }
    }

    /// A connection; `.create` (the default) makes the SQLite file when it is not there yet.
    public func open(access: DatabaseAccess = .create) throws -> any SQLDatabase { try openDatabase(url, access: access) }

    public func drop() {
        directory?.remove()
        guard let admin, let db = try? openDatabase(admin, access: .readWrite) else { return }
        defer { db.close() }
        let force = backend == .postgres ? " WITH (FORCE)" : ""
        try? db.executeScript("DROP DATABASE IF EXISTS \(db.dialect.quote(name))\(force)")
    }

    public var dialect: SQLDialect { SQLDialect(url) }

    /// The migrations compiled into the binary for this backend.
    public func migrations() throws -> [Migration] {
        Migration.embedded(dialect: dialect)
    }
}
