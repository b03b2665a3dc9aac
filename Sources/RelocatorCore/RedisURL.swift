import Foundation

/// Where Redis is: `redis://[[user]:password@]host[:port][/db]`.
public struct RedisURL: Equatable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var username: String?
    public var password: String?
    public var database: Int

    public static let `default` = RedisURL(host: "127.0.0.1", port: 6379)

    public init(host: String, port: Int = 6379, username: String? = nil, password: String? = nil, database: Int = 0) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
    }

    /// Parses a URL; `setting` names the variable or flag in the error.
    public init(parsing text: String, setting: String = "REDIS_URL") throws {
        let expected = "expected redis://[:password@]host:port/db"
        guard let components = URLComponents(string: text), components.scheme == "redis",
              let host = components.host, !host.isEmpty
        else { throw ConfigurationError(setting: setting, expected: expected) }
        var url = RedisURL(host: host)
        if let port = components.port {
            guard (1...65535).contains(port) else {
                throw ConfigurationError(setting: setting, expected: "\(expected) (port \(port) is out of range)")
            }
            url.port = port
        }
        if let user = components.user, !user.isEmpty { url.username = user }
        if let password = components.password, !password.isEmpty { url.password = password }
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        if !path.isEmpty {
            guard let db = Int(path), db >= 0 else {
                throw ConfigurationError(setting: setting, expected: "\(expected) (database must be a number, got '\(path)')")
            }
            url.database = db
        }
        self = url
    }

    /// The URL with its password masked, safe for logs and errors.
    public var description: String {
        let auth = password == nil ? "" : "\(username ?? ""):***@"
        return "redis://\(auth)\(host):\(port)/\(database)"
    }

    /// `host:port`, for error messages.
    public var address: String { "\(host):\(port)" }
}
