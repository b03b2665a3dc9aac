import Foundation

/// Which SQL database to use, from `DATABASE_URL`:
/// `postgres://user:password@host:port/db`, `mysql://user:password@host:port/db` or `sqlite:path`.
/// No URL means SQLite in the working directory (`relocator.sqlite`).
public enum DatabaseURL: Equatable, Sendable, CustomStringConvertible {
    case postgres(ServerDatabase)
    case mysql(ServerDatabase)
    case sqlite(path: String)

    /// The embedded default: a SQLite file in the working directory.
    public static let defaultSQLite = DatabaseURL.sqlite(path: "relocator.sqlite")

    /// Connection details of a database server.
    public struct ServerDatabase: Equatable, Sendable {
        public var host: String
        public var port: Int
        public var user: String?
        public var password: String?
        public var database: String
        /// Extra `?key=value` parameters, passed on to the driver (e.g. `sslmode` for PostgreSQL).
        public var options: [String: String]

        public init(host: String, port: Int, user: String? = nil, password: String? = nil, database: String, options: [String: String] = [:]) {
            self.host = host
            self.port = port
            self.user = user
            self.password = password
            self.database = database
            self.options = options
        }
    }

    public init(parsing text: String, setting: String = "DATABASE_URL") throws {
        let expected = "expected postgres://user:password@host:port/db, mysql://user:password@host:port/db or sqlite:path"
        if text.hasPrefix("sqlite:") {
            var path = String(text.dropFirst("sqlite:".count))
            if path.hasPrefix("//") { path = String(path.dropFirst(2)) }
            guard !path.isEmpty else { throw ConfigurationError(setting: setting, expected: "\(expected) (the sqlite path is empty)") }
            self = .sqlite(path: path)
            return
        }
        guard let components = URLComponents(string: text), let scheme = components.scheme else {
            throw ConfigurationError(setting: setting, expected: expected)
        }
        let defaultPort: Int
        switch scheme {
        case "postgres", "postgresql": defaultPort = 5432
        case "mysql", "mariadb": defaultPort = 3306
        default: throw ConfigurationError(setting: setting, expected: "\(expected) (unknown scheme '\(scheme)')")
        }
        guard let host = components.host, !host.isEmpty else {
            throw ConfigurationError(setting: setting, expected: "\(expected) (the host is missing)")
        }
        let name = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        guard !name.isEmpty, !name.contains("/") else {
            throw ConfigurationError(setting: setting, expected: "\(expected) (the database name is missing)")
        }
        if let port = components.port, !(1...65535).contains(port) {
            throw ConfigurationError(setting: setting, expected: "\(expected) (port \(port) is out of range)")
        }
        var options: [String: String] = [:]
        for item in components.queryItems ?? [] { options[item.name] = item.value ?? "" }
        let server = ServerDatabase(
            host: host, port: components.port ?? defaultPort,
            user: components.user.flatMap { $0.isEmpty ? nil : $0 },
            password: components.password.flatMap { $0.isEmpty ? nil : $0 },
            database: name, options: options
        )
        self = defaultPort == 5432 ? .postgres(server) : .mysql(server)
    }

    /// The URL with its password masked, safe for logs and errors.
    public var description: String {
        switch self {
        case .sqlite(let path): return "sqlite:\(path)"
        case .postgres(let s): return "postgres://\(Self.masked(s))"
        case .mysql(let s): return "mysql://\(Self.masked(s))"
        }
    }

    private static func masked(_ s: ServerDatabase) -> String {
        let auth: String
        switch (s.user, s.password) {
        case (nil, nil): auth = ""
        case (let user?, nil): auth = "\(user)@"
        case (let user, _?): auth = "\(user ?? ""):***@"
        }
        return "\(auth)\(s.host):\(s.port)/\(s.database)"
    }
}
