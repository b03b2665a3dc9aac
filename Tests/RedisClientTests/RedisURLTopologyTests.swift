import RelocatorCore
import Testing

/// Parsing of the three URL forms; no server.
@Suite struct RedisURLTopologyTests {
    @Test func aPlainURLKeepsItsMeaning() throws {
        let url = try RedisURL(parsing: "redis://app:p%40ss@10.0.0.5:6380/2")
        #expect(url.topology == .standalone)
        #expect(url.host == "10.0.0.5" && url.port == 6380 && url.database == 2)
        #expect(url.username == "app" && url.password == "p@ss")
        #expect(url.address == "10.0.0.5:6380")
        #expect(url.description == "redis://app:***@10.0.0.5:6380/2")
        #expect(try RedisURL(parsing: "redis://[::1]:7000").host == "::1")
        #expect(try RedisURL(parsing: "redis://[::1]:7000").address == "[::1]:7000")
        #expect(try RedisURL(parsing: "redis://h/") == RedisURL(host: "h"))
    }

    @Test func aClusterURLListsItsSeeds() throws {
        let url = try RedisURL(parsing: "redis-cluster://:s3cret@127.0.0.1:7000,127.0.0.1:7001,node-3")
        #expect(url.topology == .cluster)
        #expect(url.endpoints == [.init(host: "127.0.0.1", port: 7000), .init(host: "127.0.0.1", port: 7001), .init(host: "node-3", port: 6379)])
        #expect(url.password == "s3cret" && url.database == 0)
        #expect(url.address == "cluster 127.0.0.1:7000,…")
        #expect(url.description == "redis-cluster://:***@127.0.0.1:7000,127.0.0.1:7001,node-3:6379")
        #expect(try RedisURL(parsing: "redis-cluster://h:1/0").address == "cluster h:1")
        // Existing callers of host/port see the first seed.
        #expect(url.host == "127.0.0.1" && url.port == 7000)
    }

    @Test func aSentinelURLNamesTheMaster() throws {
        let url = try RedisURL(parsing: "redis-sentinel://:data-pw@10.0.0.1:26379,10.0.0.2/mymaster/3?sentinel_password=s%26p")
        #expect(url.topology == .sentinel(masterName: "mymaster"))
        #expect(url.masterName == "mymaster")
        #expect(url.endpoints == [.init(host: "10.0.0.1", port: 26379), .init(host: "10.0.0.2", port: 26379)])
        #expect(url.password == "data-pw" && url.database == 3)
        #expect(url.sentinelPassword == "s&p" && url.sentinelUsername == nil)
        #expect(url.address == "sentinel mymaster")
        #expect(url.description == "redis-sentinel://:***@10.0.0.1:26379,10.0.0.2:26379/mymaster/3?sentinel_password=***")
        #expect(!url.description.contains("data-pw") && !url.description.contains("s&p"))

        let plain = try RedisURL(parsing: "redis-sentinel://s1:5000/cache")
        #expect(plain.database == 0 && plain.password == nil && plain.sentinelPassword == nil)
        #expect(plain.description == "redis-sentinel://s1:5000/cache/0")
    }

    @Test func tlsIsRefusedWithAnExplanation() {
        for text in ["rediss://h:6380/0", "rediss-cluster://h:1", "REDISS://h"] {
            #expect {
                try RedisURL(parsing: text)
            } throws: { error in
                (error as? ConfigurationError)?.description
                    == "REDIS_URL: TLS is not supported by this build; use a TLS proxy (stunnel) or a local connection"
            }
        }
    }

    @Test(arguments: [
        ("redis-cluster://h:7000/3", "only database 0"),
        ("redis-cluster://h:7000,:7001", "no host"),
        ("redis-cluster://", "no host"),
        ("redis-cluster://h:7000?x=1", "unknown parameter 'x'"),
        ("redis-sentinel://h:26379", "master name is missing"),
        ("redis-sentinel://h:26379/", "master name is missing"),
        ("redis-sentinel://h:26379/m/x", "database must be a number"),
        ("redis-sentinel://h:26379/m/1/2", "unexpected path"),
        ("redis-sentinel://h:26379/m?sentinel_password=", "needs a value"),
        ("redis://a:1,b:2", "one host only"),
        ("redis://h:0", "port 0 is out of range"),
        ("redis://h:x", "port must be a number"),
        ("redis://h h:1", "is not a host name"),
        ("memcached://h", "expected redis://"),
    ])
    func badURLsGetOneLineNamingTheSetting(text: String, detail: String) {
        #expect {
            try RedisURL(parsing: text, setting: "--redis-url")
        } throws: { error in
            guard let error = error as? ConfigurationError else { return false }
            return error.setting == "--redis-url" && error.description.hasPrefix("--redis-url: ")
                && error.description.contains(detail) && !error.description.contains("\n")
        }
    }

    @Test func passwordsNeverAppearInErrors() {
        #expect {
            try RedisURL(parsing: "redis-cluster://:hunter2@h:1/5")
        } throws: { error in
            !String(describing: error).contains("hunter2")
        }
    }
}
