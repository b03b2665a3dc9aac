import Foundation
import RedisClient
import RelocatorCore
import SQLStore
import Testing
import TestSupport

/// Who may do what, with the built binary: `serve` on another address than loopback needs an
/// administrator credential (or says it does without one); no credential, password or database
/// URL appears in a log, `/metrics`, the dashboard, an error body or a command's output.
@Suite(.serialized) struct AccessPipelineTests {
    /// Starts `serve` with `arguments`; returns its exit status when it stops within 15 s, nil when
    /// it is listening then.
    func serve(_ pipeline: Pipeline, _ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32?, output: String) {
        let name = "serve-\(UUID().uuidString.prefix(8))"
        let process = try pipeline.cluster.start(name, ["serve", "--port", "0"] + arguments, environment: environment)
        let out = pipeline.cluster.directory.path + "/\(name).out"
        var listening = false
        try pipeline.cluster.waitUntil("serve to listen or stop", timeout: .seconds(15)) {
            listening = ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").contains("listening on http://")
            return listening || !process.isRunning
        }
        let output = pipeline.cluster.log(name)
        if listening {
            process.signal(SIGTERM)
            _ = process.stop(timeout: .seconds(10))
            return (nil, output)
        }
        return (process.stop(timeout: .seconds(1)), output)
    }

    @Test func serveOnAnAddressAnyoneReachesRefusesToStartWithoutAnAdministratorCredential() throws {
        let pipeline = try Pipeline()
        defer { pipeline.tearDown() }
        let refused = try serve(pipeline, ["--host", "0.0.0.0"])
        #expect(refused.status == 1, "serve started: \(refused.output)")
        #expect(refused.output.contains("RELOCATOR_ADMIN_TOKEN") && refused.output.contains("--allow-open-admin"), "\(refused.output)")
        #expect(try serve(pipeline, ["--host", "0.0.0.0", "--allow-open-admin"]).status == nil)
        #expect(try serve(pipeline, ["--host", "0.0.0.0"], environment: ["RELOCATOR_ADMIN_TOKEN": "adm-0e1f"]).status == nil)
        // Loopback is only this machine: no credential needed, as before.
        #expect(try serve(pipeline, ["--host", "127.0.0.1"]).status == nil)
    }

    /// Credentials, a Redis password and a PostgreSQL password in a whole run — counts, moves, a dead
    /// letter, refused and bad requests, Redis gone and back, every page and command: none of them,
    /// nor either URL, shows anywhere an operator or a client can read.
    @Test func noCredentialPasswordOrDatabaseURLAppearsInLogsMetricsTheDashboardOrErrors() throws {
        let redisPassword = "redis-pw-\(UUID().uuidString.prefix(8))"
        let server = try RedisServer(password: redisPassword)
        let redisURL = "redis://:\(redisPassword)@127.0.0.1:\(server.port)/0"
        let (submit, admin, read) = ("sub-\(UUID().uuidString.prefix(8))", "adm-\(UUID().uuidString.prefix(8))", "rd-\(UUID().uuidString.prefix(8))")
        let pipeline = try Pipeline(database: .postgres, redis: redisURL,
                                    environment: ["RELOCATOR_SUBMIT_TOKEN": submit, "RELOCATOR_ADMIN_TOKEN": admin, "RELOCATOR_READ_TOKEN": read])
        defer { pipeline.tearDown() }
        let databaseURL = try #require(pipeline.cluster.environment["DATABASE_URL"])
        guard case .postgres(let database) = try DatabaseURL(parsing: databaseURL, setting: "DATABASE_URL"), let databasePassword = database.password else {
            Issue.record("the test PostgreSQL URL has no password: \(databaseURL.prefix(12))…")
            return
        }
        try pipeline.addContents([(1, "a.bin", "bronze", 4096), (2, "b.bin", "bronze", 4096), (3, "lost.bin", "bronze", nil)])
        let port = try pipeline.cluster.startAPI()
        try pipeline.cluster.startCommitter()
        try pipeline.cluster.startWorker("w1")
        let basic = ["Authorization": "Basic " + Data("operator:\(read)".utf8).base64EncodedString()]
        var seen: [String] = []
        func post(_ path: String, _ json: String, _ token: String?) throws -> HTTPResult {
            let answer = try HTTP.postJSON(port, path, json, headers: token.map { ["Authorization": "Bearer \($0)"] } ?? [:])
            seen.append("POST \(path) \(answer.status): \(answer.body)")
            return answer
        }
        func get(_ path: String, _ headers: [String: String]) throws -> HTTPResult {
            let answer = try HTTP.get(port, path, headers: headers)
            seen.append("GET \(path) \(answer.status): \(answer.body)")
            return answer
        }
        #expect(try post("/v1/contents/1/count", #"{"count": 5000}"#, submit).status == 202)
        #expect(try post("/v1/contents/3/count", #"{"count": 5000}"#, submit).status == 202)
        #expect(try post("/v1/contents/2/count", #"{"count": 5000}"#, nil).status == 401)
        #expect(try post("/v1/contents/2/count", #"{"count": 5000}"#, "\(submit)x").status == 401)
        #expect(try post("/v1/levels/gold/pause", "{}", submit).status == 403)
        #expect(try post("/v1/contents/2/count", #"{"count": -1}"#, submit).status == 400)
        #expect(try post("/v1/contents/999/count", #"{"count": 5}"#, admin).status == 404)
        try pipeline.cluster.waitUntil("cid 1 committed and cid 3 dead") {
            try pipeline.level(of: 1) == "silver" && (try get("/v1/jobs/3", basic).json?["status"] as? String) == "dead"
        }
        // Redis gone: 503s; then back.
        server.stop()
        #expect(try post("/v1/contents/2/count", #"{"count": 5000}"#, submit).status == 503)
        #expect(try get("/readyz", [:]).status == 503)
        #expect(try get("/ui", basic).status == 503)
        try server.start()
        try pipeline.cluster.waitUntil("Redis back") { try HTTP.get(port, "/readyz").status == 200 }
        #expect(try post("/v1/contents/2/count", #"{"count": 5000}"#, admin).status == 202)
        for path in ["/metrics", "/ui", "/ui/workers", "/ui/dead", "/ui/levels", "/ui/relocations", "/v1/dead", "/v1/queues",
                     "/v1/contents/3/why", "/readyz", "/v1/access"] {
            #expect(try get(path, basic).status == 200, "\(path)")
        }
        // (The private Redis keeps nothing across its restart: cid 3's job is gone.)
        #expect(try get("/v1/jobs/3", basic).status == 404)
        #expect(try get("/ui", [:]).status == 401)
        // The commands print what they know, and a wrong password is named without itself.
        for arguments in [["status"], ["why", "3"], ["dlq", "list"], ["plan"], ["levels", "show"]] {
            let result = try pipeline.cluster.run(arguments)
            seen.append("\(arguments): \(result.status) \(result.stdout) \(result.stderr)")
        }
        var wrong = database
        wrong.password = "not-\(databasePassword)"
        let refused = try pipeline.cluster.run(["status"], environment: ["DATABASE_URL": TestDatabase.text(.postgres(wrong)),
                                                                         "REDIS_URL": "redis://:wrong-\(redisPassword)@127.0.0.1:\(server.port)/0"])
        #expect(refused.status != 0)
        seen.append("status with wrong passwords: \(refused.stdout) \(refused.stderr)")
        pipeline.cluster.stop(keepLogs: true)
        for name in ["api", "w1", "committer"] {
            for suffix in ["out", "err"] {
                seen.append(((try? String(contentsOfFile: pipeline.cluster.directory.path + "/\(name).\(suffix)", encoding: .utf8)) ?? ""))
            }
        }
        let everything = seen.joined(separator: "\n")
        #expect(everything.contains("authentication failed"), "the wrong password was not reported")
        for (what, secret) in [("the submit credential", submit), ("the administrator's", admin), ("the read credential", read),
                               ("the Redis password", redisPassword), ("the PostgreSQL password", databasePassword),
                               ("DATABASE_URL", databaseURL), ("REDIS_URL", redisURL)] {
            #expect(!everything.contains(secret), "\(what) appears: \(everything.components(separatedBy: "\n").filter { $0.contains(secret) }.prefix(3))")
        }
        pipeline.cluster.directory.remove()
    }
}
