import Foundation

/// Where Redis is. Three forms:
///
/// - `redis://[[user]:password@]host[:port][/db]`: one server (port 6379, database 0 unless given).
/// - `redis-cluster://[[user]:password@]host1:port1,host2:port2[/0]`: a Redis Cluster, named by one or
///   more seed nodes (port 6379 unless given); the client learns the other nodes and the slot map from
///   them. A cluster has only database 0.
/// - `redis-sentinel://[[user]:password@]host1:port1,host2:port2/MASTER_NAME[/db][?sentinel_password=…]`:
///   the master that the sentinels (port 26379 unless given) name `MASTER_NAME`. User and password are
///   those of the data nodes (master and replicas). The sentinels are asked without AUTH unless
///   `sentinel_password` is given (and `sentinel_username` for an ACL user of the sentinels).
///
/// User, password, master name and query values may be percent-encoded (`p%40ss` for `p@ss`); an
/// IPv6 address is written in brackets (`[::1]:6379`). `rediss://` (TLS) is refused: this build has no
/// TLS. Every parse error is one line that names the setting; no error or `description` shows a
/// password.
public struct RedisURL: Equatable, Sendable, CustomStringConvertible {
    /// One `host:port`.
    public struct Endpoint: Hashable, Sendable, CustomStringConvertible {
        public var host: String
        public var port: Int

        /// The ports an endpoint may have.
        public static let ports = 1...65535

        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }

        /// `host:port`, with an IPv6 address in brackets.
        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    /// What the endpoints are.
    public enum Topology: Equatable, Sendable {
        /// One server.
        case standalone
        /// Seed nodes of a Redis Cluster.
        case cluster
        /// Sentinels that know the master called `masterName`.
        case sentinel(masterName: String)
    }

    public var topology: Topology
    /// The server (standalone), the seed nodes (cluster) or the sentinels (sentinel); never empty.
    public var endpoints: [Endpoint]
    /// The user and password of the data nodes.
    public var username: String?
    public var password: String?
    public var database: Int
    /// AUTH for the sentinels (`?sentinel_username=…&sentinel_password=…`); nil: no AUTH.
    public var sentinelUsername: String?
    public var sentinelPassword: String?

    public static let `default` = RedisURL(host: "127.0.0.1", port: 6379)

    /// One server.
    public init(host: String, port: Int = 6379, username: String? = nil, password: String? = nil, database: Int = 0) {
        self.topology = .standalone
        self.endpoints = [Endpoint(host: host, port: port)]
        self.username = username
        self.password = password
        self.database = database
    }

    /// A Redis Cluster known by its seed nodes (at least one).
    public init(clusterSeeds seeds: [Endpoint], username: String? = nil, password: String? = nil) {
        precondition(!seeds.isEmpty, "a cluster URL needs at least one seed node")
        self.topology = .cluster
        self.endpoints = seeds
        self.username = username
        self.password = password
        self.database = 0
    }

    /// The master that `sentinels` (at least one) call `masterName`.
    public init(sentinels: [Endpoint], masterName: String, username: String? = nil, password: String? = nil,
                database: Int = 0, sentinelUsername: String? = nil, sentinelPassword: String? = nil) {
        precondition(!sentinels.isEmpty, "a sentinel URL needs at least one sentinel")
        self.topology = .sentinel(masterName: masterName)
        self.endpoints = sentinels
        self.username = username
        self.password = password
        self.database = database
        self.sentinelUsername = sentinelUsername
        self.sentinelPassword = sentinelPassword
    }

    /// The first endpoint's host (the server itself for `redis://`).
    public var host: String {
        get { endpoints[0].host }
        set { endpoints[0].host = newValue }
    }

    /// The first endpoint's port (the server itself for `redis://`).
    public var port: Int {
        get { endpoints[0].port }
        set { endpoints[0].port = newValue }
    }

    /// The master name of a sentinel URL; nil otherwise.
    public var masterName: String? {
        if case .sentinel(let name) = topology { return name }
        return nil
    }

    /// The URL with its passwords masked, safe for logs and errors.
    public var description: String {
        let auth = password == nil ? "" : "\(username ?? ""):***@"
        let hosts = endpoints.map(\.description).joined(separator: ",")
        switch topology {
        case .standalone:
            return "redis://\(auth)\(hosts)/\(database)"
        case .cluster:
            return "redis-cluster://\(auth)\(hosts)"
        case .sentinel(let name):
            var query: [String] = []
            if let sentinelUsername { query.append("sentinel_username=\(sentinelUsername)") }
            if sentinelPassword != nil { query.append("sentinel_password=***") }
            let tail = query.isEmpty ? "" : "?" + query.joined(separator: "&")
            return "redis-sentinel://\(auth)\(hosts)/\(name)/\(database)\(tail)"
        }
    }

    /// A short text for messages: `127.0.0.1:6379`, `cluster 127.0.0.1:7000,…`, `sentinel mymaster`.
    public var address: String {
        switch topology {
        case .standalone: return endpoints[0].description
        case .cluster: return "cluster \(endpoints[0])" + (endpoints.count > 1 ? ",…" : "")
        case .sentinel(let name): return "sentinel \(name)"
        }
    }

    // MARK: - Parsing

    static let expectedStandalone = "expected redis://[[user]:password@]host[:port][/db]"
    static let expectedCluster = "expected redis-cluster://[[user]:password@]host:port[,host:port…]"
    static let expectedSentinel = "expected redis-sentinel://[[user]:password@]host:port[,host:port…]/MASTER_NAME[/db]"

    /// Parses a URL; `setting` names the variable or flag in the error.
    public init(parsing text: String, setting: String = "REDIS_URL") throws {
        func fail(_ expected: String, _ detail: String? = nil) -> ConfigurationError {
            ConfigurationError(setting: setting, expected: detail.map { "\(expected) (\($0))" } ?? expected)
        }
        let anyForm = "expected redis://[[user]:password@]host[:port][/db], redis-cluster://host:port,host:port… or redis-sentinel://host:port,host:port…/MASTER_NAME[/db]"
        guard let schemeEnd = text.range(of: "://") else { throw fail(anyForm) }
        let scheme = text[..<schemeEnd.lowerBound].lowercased()
        if scheme.hasPrefix("rediss") {
            throw ConfigurationError(setting: setting,
                                     expected: "TLS is not supported by this build; use a TLS proxy (stunnel) or a local connection")
        }
        let expected: String
        let defaultPort: Int
        switch scheme {
        case "redis": expected = Self.expectedStandalone; defaultPort = 6379
        case "redis-cluster": expected = Self.expectedCluster; defaultPort = 6379
        case "redis-sentinel": expected = Self.expectedSentinel; defaultPort = 26379
        default: throw fail(anyForm)
        }

        var rest = Substring(text[schemeEnd.upperBound...])
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        var query: Substring = ""
        if let mark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        let authority: Substring
        var path: Substring = ""
        if let slash = rest.firstIndex(of: "/") {
            authority = rest[..<slash]
            path = rest[rest.index(after: slash)...]
        } else {
            authority = rest
        }

        // user:password@hosts
        var hostList = authority
        var username: String?
        var password: String?
        if let at = authority.lastIndex(of: "@") {
            let userinfo = authority[..<at]
            hostList = authority[authority.index(after: at)...]
            let user: Substring
            var secret: Substring?
            if let colon = userinfo.firstIndex(of: ":") {
                user = userinfo[..<colon]
                secret = userinfo[userinfo.index(after: colon)...]
            } else {
                user = userinfo
            }
            guard let decodedUser = String(user).removingPercentEncoding,
                  let decodedSecret = secret.map({ String($0).removingPercentEncoding }) ?? ""
            else { throw fail(expected, "the user or password is not valid percent-encoding") }
            if !decodedUser.isEmpty { username = decodedUser }
            if !decodedSecret.isEmpty { password = decodedSecret }
        }

        var endpoints: [Endpoint] = []
        for item in hostList.split(separator: ",", omittingEmptySubsequences: false) {
            endpoints.append(try Self.endpoint(item, defaultPort: defaultPort, fail: { fail(expected, $0) }))
        }
        guard !endpoints.isEmpty, !hostList.isEmpty else { throw fail(expected, "no host") }

        var parameters: [String: String] = [:]
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(parts[0])
            guard scheme == "redis-sentinel", name == "sentinel_password" || name == "sentinel_username" else {
                throw fail(expected, "unknown parameter '\(name)'")
            }
            guard parts.count == 2, let value = String(parts[1]).removingPercentEncoding, !value.isEmpty else {
                throw fail(expected, "\(name) needs a value")
            }
            parameters[name] = value
        }

        func database(_ text: Substring) throws -> Int {
            guard let db = Int(text), db >= 0, text.allSatisfy(\.isNumber) else {
                throw fail(expected, "database must be a number, got '\(text)'")
            }
            return db
        }

        switch scheme {
        case "redis":
            guard endpoints.count == 1 else {
                throw fail(expected, "one host only; use redis-cluster:// or redis-sentinel:// for several")
            }
            var url = RedisURL(host: endpoints[0].host, port: endpoints[0].port, username: username, password: password)
            if !path.isEmpty { url.database = try database(path) }
            self = url
        case "redis-cluster":
            if !path.isEmpty && path != "0" {
                throw fail(expected, "a Redis Cluster has only database 0, got '/\(path)'")
            }
            self = RedisURL(clusterSeeds: endpoints, username: username, password: password)
        default:
            let parts = path.split(separator: "/", omittingEmptySubsequences: false)
            guard let first = parts.first, !first.isEmpty else { throw fail(expected, "the master name is missing") }
            guard let name = String(first).removingPercentEncoding, !name.isEmpty else {
                throw fail(expected, "the master name is not valid percent-encoding")
            }
            guard parts.count <= 2 else { throw fail(expected, "unexpected path after the database") }
            let db = parts.count == 2 && !parts[1].isEmpty ? try database(parts[1]) : 0
            self = RedisURL(sentinels: endpoints, masterName: name, username: username, password: password, database: db,
                            sentinelUsername: parameters["sentinel_username"], sentinelPassword: parameters["sentinel_password"])
        }
    }

    /// `host`, `host:port`, `[v6]` or `[v6]:port`.
    private static func endpoint(_ text: Substring, defaultPort: Int, fail: (String) -> ConfigurationError) throws -> Endpoint {
        var host: Substring
        var portText: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw fail("unclosed '[' in '\(text)'") }
            host = text[text.index(after: text.startIndex)..<close]
            let after = text[text.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw fail("unexpected '\(after)' after '[\(host)]'") }
                portText = after.dropFirst()
            }
            guard !host.isEmpty, host.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else {
                throw fail("'\(host)' is not an IPv6 address")
            }
        } else {
            if let colon = text.lastIndex(of: ":") {
                host = text[..<colon]
                portText = text[text.index(after: colon)...]
            } else {
                host = text
            }
            guard !host.isEmpty else { throw fail("no host") }
            guard host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "_") }) else {
                throw fail("'\(host)' is not a host name")
            }
        }
        var port = defaultPort
        if let portText {
            guard let value = Int(portText), portText.allSatisfy(\.isNumber) else {
                throw fail("port must be a number, got '\(portText)'")
            }
            guard Endpoint.ports.contains(value) else { throw fail("port \(value) is out of range") }
            port = value
        }
        return Endpoint(host: String(host), port: port)
    }
}
