import Foundation
import Testing
import TestSupport

/// Settings errors name where the value came from; logs are lines of text or JSON; a worker says
/// once that Redis is gone and once that it is back.
@Suite struct SettingsAndLogsTests {
    @Test(arguments: [["levels"], ["status"], ["checksum", "/dev/null"], ["dlq", "list"], ["migrate"]])
    func aBadLogLevelStopsEveryCommandNamingTheVariableAndTheChoices(arguments: [String]) throws {
        let cli = try CLIWorkspace(redis: CLIWorkspace.noRedis, environment: ["RELOCATOR_LOG_LEVEL": "verbose"])
        defer { cli.stop() }
        let result = try cli.run(arguments)
        #expect(result.status == 1)
        #expect(result.stderr == "Error: RELOCATOR_LOG_LEVEL: one of trace, debug, info, notice, warning, error, critical (got 'verbose')\n")
        #expect(!FileManager.default.fileExists(atPath: cli.databasePath))
    }

    @Test(arguments: [
        (["worker", "--level-dirs", "gold=/tmp", "--levels", "silver"], [:], "--levels: 'silver' has no directory in --level-dirs, which names gold"),
        (["worker", "--level-dirs", "gold=relative"], ["RELOCATOR_LEVELS": "gold=/tmp"], "--level-dirs: an absolute directory for level 'gold'"),
        (["worker"], ["RELOCATOR_LEVELS": "gold=relative"], "RELOCATOR_LEVELS: an absolute directory for level 'gold'"),
        (["worker", "--levels", "silver"], ["RELOCATOR_LEVELS": "gold=/tmp"], "--levels: 'silver' has no directory in RELOCATOR_LEVELS"),
        (["worker"], [:], "RELOCATOR_LEVELS: level=directory pairs"),
        (["dlq", "list"], ["REDIS_URL": "http://h:1"], "REDIS_URL: "),
        (["dlq", "list", "--redis-url", "http://h:1"], [:], "--redis-url: "),
        (["dlq", "list"], ["REDIS_URL": "rediss://h:6380/0"], "REDIS_URL: TLS is not supported by this build; use a TLS proxy (stunnel) or a local connection"),
        (["levels"], ["DATABASE_URL": "oracle://h/db"], "DATABASE_URL: "),
        (["levels", "--database-url", "oracle://h/db"], [:], "--database-url: "),
        (["dlq", "list"], ["RELOCATOR_PREFIX": "a b"], "RELOCATOR_PREFIX: 1 to 64 characters without spaces"),
        (["dlq", "list", "--prefix", "a b"], [:], "--prefix: 1 to 64 characters without spaces"),
        (["dlq", "list", "--prefix", ""], [:], "--prefix: 1 to 64 characters without spaces"),
        (["migrate", "--migrations", ""], [:], "--migrations names no directory"),
        (["worker", "--levels", "gold,gold"], ["RELOCATOR_LEVELS": "gold=/tmp"], "--levels names 'gold' twice"),
        (["levels"], ["RELOCATOR_LOG_FORMAT": "xml"], "RELOCATOR_LOG_FORMAT: one of text, json (got 'xml')"),
        (["worker"], ["RELOCATOR_LEVELS": "gold=/tmp", "RELOCATOR_MAX_ATTEMPTS": "0"], "RELOCATOR_MAX_ATTEMPTS: a whole number from 1 to 1000000, got '0'"),
        // Times past what Redis can expire or score are refused at start (not retried for ever as an outage).
        (["worker"], ["RELOCATOR_LEVELS": "gold=/tmp", "RELOCATOR_HEARTBEAT_TTL_MS": "9223372036854775807"],
         "RELOCATOR_HEARTBEAT_TTL_MS: a whole number from 300 to 3600000, got '9223372036854775807'"),
        (["worker"], ["RELOCATOR_LEVELS": "gold=/tmp", "RELOCATOR_RETRY_CAP_MS": "9223372036854775807"],
         "RELOCATOR_RETRY_CAP_MS: a whole number from 1 to 315360000000, got '9223372036854775807'"),
        (["committer"], ["RELOCATOR_JOB_TTL": "9223372036854775807"], "RELOCATOR_JOB_TTL: a whole number from 1 to 315360000, got '9223372036854775807'"),
        (["committer"], ["RELOCATOR_HALF_LIFE": "0s"], "RELOCATOR_HALF_LIFE: a duration above 0 such as 24h"),
        (["worker"], ["RELOCATOR_LEVELS": "gold=/tmp", "RELOCATOR_CHECKSUM": "md5"], "RELOCATOR_CHECKSUM: one of xxh128, sha256 (got 'md5')"),
    ])
    func everySettingErrorNamesWhereTheValueCameFrom(arguments: [String], environment: [String: String], message: String) throws {
        let cli = try CLIWorkspace(redis: CLIWorkspace.noRedis, environment: environment)
        defer { cli.stop() }
        let result = try cli.run(arguments)
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.errorLines.count == 1, "\(result.stderr)")
        #expect(result.stderr.hasPrefix("Error: " + message), "\(result.stderr)")
    }

    @Test func connectionErrorsNameTheServerNotAnInternalCommand() throws {
        let cli = try ContentsTests.workspace(redis: CLIWorkspace.noRedis)
        defer { cli.stop() }
        #expect(try cli.run(["contents", "add", "--cid", "1", "--filename", "a.mp4", "--level", "bronze"]).status == 0)
        let unknown = try cli.run(["enqueue", "--cid", "2", "--count", "5"])
        #expect(unknown.status == 1)
        #expect(unknown.errorLines.count == 1 && unknown.stderr.contains("no content with cid 2"), "\(unknown.stderr)")
        let port = try freeLoopbackPort()
        for arguments in [["status"], ["dlq", "list"], ["pause", "gold"], ["enqueue", "--cid", "1", "--count", "5"]] {
            let result = try cli.run(arguments, environment: ["REDIS_URL": "redis://127.0.0.1:\(port)/0"])
            #expect(result.status == 1)
            #expect(result.stderr == "Error: redis 127.0.0.1:\(port): cannot connect: Connection refused\n", "\(arguments): \(result.stderr)")
        }
    }

    // MARK: - Log lines

    /// Starts a worker over fresh level directories and waits for its `started` line.
    func startWorker(_ cli: CLIWorkspace, environment: [String: String] = [:], _ extra: [String] = []) throws -> ChildProcess {
        cli.environment["RELOCATOR_LEVELS"] = try cli.makeLevels()
        let worker = try cli.start("worker", ["worker", "--id", "w-logs", "--concurrency", "1"] + extra, environment: environment)
        try cli.waitUntil("the worker's start") { cli.stderr("worker").contains("started") || !worker.isRunning }
        return worker
    }

    @Test(arguments: [(["--log-format", "json"], [String: String]()), ([], ["RELOCATOR_LOG_FORMAT": "json"])])
    func jsonLogsAreOneObjectPerLineWithTimeLevelMessageAndMetadata(flags: [String], environment: [String: String]) throws {
        let cli = try CLIWorkspace()
        defer { cli.stop() }
        let worker = try startWorker(cli, environment: environment, flags)
        worker.signal(SIGTERM)
        #expect(worker.wait(timeout: .seconds(20)) == 0)
        let lines = cli.stderr("worker").split(separator: "\n")
        #expect(lines.count >= 2, "\(lines)")
        var messages: [String] = []
        for line in lines {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
            let time = try #require(object["time"] as? String)
            #expect(time.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/) != nil, "\(time)")
            #expect(["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(object["level"] as? String ?? ""))
            #expect(object["label"] as? String == "relocator.worker")
            #expect(object["metadata"] is [String: Any])
            messages.append(object["message"] as? String ?? "")
        }
        let started = try #require(lines.first { $0.contains("\"message\":\"started\"") })
        let metadata = try #require((try JSONSerialization.jsonObject(with: Data(started.utf8)) as? [String: Any])?["metadata"] as? [String: Any])
        #expect(metadata["worker"] as? String == "w-logs")
        #expect(metadata["concurrency"] as? String == "1")
        #expect(messages.contains("stopped"))
    }

    @Test func textLogsCarryAnRFC3339TimeTheLevelAndTheMetadata() throws {
        let cli = try CLIWorkspace()
        defer { cli.stop() }
        let worker = try startWorker(cli)
        worker.stop()
        let started = try #require(cli.stderr("worker").split(separator: "\n").first { $0.contains(" started ") })
        #expect(started.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info relocator\.worker: started .*worker=w-logs.*/) != nil, "\(started)")
    }

    @Test func aWorkerLogsOneLinePerRedisOutageAndOneWhenRedisAnswersAgain() throws {
        let redis = try RedisServer()
        defer { redis.stop() }
        let cli = try CLIWorkspace(redis: "redis://127.0.0.1:\(redis.port)/0")
        defer { cli.stop() }
        let worker = try startWorker(cli)
        redis.stop()
        try cli.waitUntil("the outage line") { cli.stderr("worker").contains("Redis is unreachable") }
        try redis.start()
        try cli.waitUntil("the line that Redis is back") { cli.stderr("worker").contains("Redis answers again") }
        let log = cli.stderr("worker")
        #expect(log.components(separatedBy: "Redis is unreachable").count == 2, "\(log)")
        #expect(log.components(separatedBy: "Redis answers again").count == 2, "\(log)")
        #expect(log.contains(/Redis answers again \(unreachable for \d+\.\d s\)/), "\(log)")
        #expect(worker.isRunning)
    }
}
