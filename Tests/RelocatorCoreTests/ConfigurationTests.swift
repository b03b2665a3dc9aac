import RelocatorCore
import Testing

@Suite struct RedisURLTests {
    @Test func parsesEveryPart() throws {
        let url = try RedisURL(parsing: "redis://:s3cret@10.0.0.5:6380/2")
        #expect(url == RedisURL(host: "10.0.0.5", port: 6380, password: "s3cret", database: 2))
        #expect(try RedisURL(parsing: "redis://localhost") == RedisURL(host: "localhost"))
        #expect(try RedisURL(parsing: "redis://app:pw@h:1/0").username == "app")
    }

    @Test func maskedDescriptionNeverShowsThePassword() throws {
        let url = try RedisURL(parsing: "redis://:s3cret@h:6379/0")
        #expect(url.description == "redis://:***@h:6379/0")
        #expect(!url.description.contains("s3cret"))
    }

    @Test(arguments: ["localhost:6379", "http://h:1", "redis://h:99999", "redis://h/x", "redis://"])
    func rejectsBadURLsNamingTheVariable(text: String) {
        #expect {
            try RedisURL(parsing: text)
        } throws: { error in
            (error as? ConfigurationError)?.setting == "REDIS_URL"
        }
    }
}

@Suite struct DatabaseURLTests {
    @Test func parsesTheThreeBackends() throws {
        #expect(try DatabaseURL(parsing: "postgres://u:p%40ss@db:5433/app?sslmode=disable")
            == .postgres(.init(host: "db", port: 5433, user: "u", password: "p@ss", database: "app", options: ["sslmode": "disable"])))
        #expect(try DatabaseURL(parsing: "mysql://root@127.0.0.1/legacy")
            == .mysql(.init(host: "127.0.0.1", port: 3306, user: "root", database: "legacy")))
        #expect(try DatabaseURL(parsing: "sqlite:data/relocator.sqlite") == .sqlite(path: "data/relocator.sqlite"))
        #expect(try DatabaseURL(parsing: "sqlite:///var/lib/r.sqlite") == .sqlite(path: "/var/lib/r.sqlite"))
    }

    @Test func maskedDescriptionNeverShowsThePassword() throws {
        let url = try DatabaseURL(parsing: "postgres://app:hunter2@db:5432/app")
        #expect(url.description == "postgres://app:***@db:5432/app")
    }

    @Test(arguments: ["oracle://h/db", "postgres://h", "postgres:///db", "sqlite:", "not a url", "mysql://h:0/db"])
    func rejectsBadURLs(text: String) {
        #expect(throws: ConfigurationError.self) { try DatabaseURL(parsing: text) }
    }
}

@Suite struct LevelDirectoriesTests {
    @Test func parsesPairsInOrder() throws {
        let levels = try LevelDirectories(parsing: "gold=/data/ssd, silver=/data/hdd,bronze=/data/archive")
        #expect(levels.names == ["gold", "silver", "bronze"])
        #expect(levels.directory(of: "silver") == "/data/hdd")
        #expect(levels.directory(of: "platinum") == nil)
    }

    @Test(arguments: ["", "gold", "gold=relative/dir", "gold=/a,gold=/b", "go ld=/a", "gold=/a,=/b"])
    func rejectsBadValues(text: String) {
        #expect(throws: ConfigurationError.self) { try LevelDirectories(parsing: text) }
    }
}
