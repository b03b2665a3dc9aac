import Foundation
import Testing
import TestSupport

/// What the long-running commands say at start about what is missing, and a busy port.
@Suite struct StartupTests {
    /// Starts `serve --port 0` and waits until it listens.
    func startAPI(_ cli: CLIWorkspace, environment: [String: String] = [:]) throws -> (ChildProcess, Int) {
        let api = try cli.start("api", ["serve", "--port", "0"], environment: environment)
        var port: Int?
        try cli.waitUntil("the API to listen") {
            if let line = cli.stdout("api").split(separator: "\n").first(where: { $0.hasPrefix("listening on http://") }) {
                port = Int(line.split(separator: ":").last ?? "")
            }
            return port != nil || !api.isRunning
        }
        return (api, try #require(port, "the API did not start: \(cli.stderr("api"))"))
    }

    @Test func serveOnADatabaseNeverMigratedLogsThatMigrateIsNeededAndKeepsRunning() throws {
        let cli = try CLIWorkspace()
        defer { cli.stop() }
        #expect(FileManager.default.createFile(atPath: cli.databasePath, contents: Data()))
        let (api, port) = try startAPI(cli)
        #expect(api.isRunning)
        let log = cli.stderr("api")
        #expect(log.contains("warning relocator.api: the database sqlite relocator.sqlite is not ready: no schema: run `relocator migrate`"), "\(log)")
        #expect(try HTTP.get(port, "/healthz").status == 200)
        let ready = try HTTP.get(port, "/readyz")
        #expect(ready.status == 503, "\(ready.body)")
        #expect((ready.json?["database"] as? String)?.contains("run relocator migrate") == true, "\(ready.body)")

        // Migrated while it runs: ready, and a line in the log when it stops.
        #expect(try cli.run(["migrate"]).status == 0)
        try cli.waitUntil("readiness") { try HTTP.get(port, "/readyz").status == 200 }
        api.signal(SIGTERM)
        #expect(api.wait(timeout: .seconds(20)) == 0)
        #expect(cli.stderr("api").contains("stopping on SIGTERM"), "\(cli.stderr("api"))")
    }

    @Test func serveWithoutADatabaseFileSaysHowToMakeOne() throws {
        let cli = try CLIWorkspace(redis: CLIWorkspace.noRedis)
        defer { cli.stop() }
        let (api, _) = try startAPI(cli)
        #expect(api.isRunning)
        #expect(cli.stderr("api").contains("the database is not ready: no database: DATABASE_URL is not set"), "\(cli.stderr("api"))")
        #expect(!FileManager.default.fileExists(atPath: cli.databasePath))
    }

    @Test func serveLogsThatRedisIsUnreachableAndKeepsRunning() throws {
        let cli = try CLIWorkspace(redis: "redis://127.0.0.1:\(try freeLoopbackPort())/0")
        defer { cli.stop() }
        #expect(try cli.run(["migrate"]).status == 0)
        let (api, _) = try startAPI(cli)
        #expect(api.isRunning)
        let log = cli.stderr("api")
        #expect(log.contains("Redis is unreachable (waiting for it): redis 127.0.0.1:"), "\(log)")
        #expect(log.contains("cannot connect: Connection refused"))
        #expect(!log.contains("database is not ready"), "\(log)")
    }

    @Test func theCommitterLogsAnOldSchemaAtStart() throws {
        let cli = try CLIWorkspace(redis: CLIWorkspace.noRedis)
        defer { cli.stop() }
        #expect(FileManager.default.createFile(atPath: cli.databasePath, contents: Data()))
        let committer = try cli.start("committer", ["committer", "--id", "c-startup"])
        // (It waits for Redis before it starts: its id is checked there first.)
        try cli.waitUntil("the committer's word on the database") { cli.stderr("committer").contains("is not ready") || !committer.isRunning }
        #expect(committer.isRunning)
        #expect(cli.stderr("committer").contains("the database sqlite relocator.sqlite is not ready: no schema: run `relocator migrate`"),
                "\(cli.stderr("committer"))")
    }

    @Test func serveChecksTheLevelDirectoriesWhenItIsGivenThem() throws {
        let cli = try CLIWorkspace(redis: CLIWorkspace.noRedis)
        defer { cli.stop() }
        _ = try cli.makeLevels(["gold"])
        let result = try cli.run(["serve", "--port", "0"], environment: ["RELOCATOR_LEVELS": "gold=\(cli.levelPath("gold")),silver=\(cli.levelPath("gold"))"])
        #expect(result.status == 1)
        #expect(result.errorLines.count == 1, "\(result.stderr)")
        #expect(result.stderr.contains("RELOCATOR_LEVELS: "), "\(result.stderr)")
        #expect(result.stderr.contains("'gold' and 'silver'"), "\(result.stderr)")
    }

    @Test func serveOnABusyPortSaysWhichAddressInOneLine() throws {
        let cli = try CLIWorkspace(redis: CLIWorkspace.noRedis)
        defer { cli.stop() }
        #expect(try cli.run(["migrate"]).status == 0)
        let (fd, port) = try loopbackSocket(backlog: 1)
        defer { close(fd) }
        let result = try cli.run(["serve", "--port", String(port)])
        #expect(result.status == 1)
        #expect(result.stderr == "Error: cannot listen on 127.0.0.1:\(port): address already in use\n", "\(result.stderr)")
        let blank = try cli.run(["serve", "--port", "0"], environment: ["RELOCATOR_ADMIN_TOKEN": "  "])
        #expect(blank.status == 1 && blank.stderr == "Error: RELOCATOR_ADMIN_TOKEN holds only spaces: no client can send it; unset it or give a token\n",
                "\(blank.stderr)")
        // Any free port of an address this host does not have: refused at once, naming it.
        let foreign = try cli.run(["serve", "--port", "0", "--host", "192.0.2.1", "--allow-open-admin"])
        #expect(foreign.status == 1 && foreign.stderr == "Error: cannot listen on 192.0.2.1:0: cannot assign requested address\n", "\(foreign.stderr)")
    }
}
