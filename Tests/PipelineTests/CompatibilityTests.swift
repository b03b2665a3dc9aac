import Foundation
import RedisClient
import Testing
import TestSupport

/// The original system's two endpoints answer exactly as before; bad input is a JSON 4xx that
/// enqueues nothing.
@Suite(.serialized) struct CompatibilityTests {
    @Test func postSentenceAndUpdateSentenceAnswerAsTheOriginal() throws {
        let pipeline = try Pipeline()
        defer { pipeline.tearDown() }
        let sums = try pipeline.addContents([(7, "g.mp4", "bronze", 20_000)])
        let port = try pipeline.cluster.startAPI()

        let posted = try pipeline.post(7, 1964)
        #expect(posted.status == 200)
        #expect(posted.headers["content-type"] == "application/json")
        let json = try #require(posted.json)
        #expect(Set(json.keys) == ["cid", "count", "target", "db_level", "filename", "worker_id", "status"])
        #expect(json["cid"] as? String == "7" && json["count"] as? String == "1964")
        #expect(json["target"] as? String == "silver" && json["db_level"] as? String == "bronze")
        #expect(json["filename"] as? String == "g.mp4" && json["status"] as? String == "update")
        #expect(json["worker_id"] is NSNull)

        // Not moved yet.
        #expect(try HTTP.postForm(port, "/update_sentence", [("cid", "7")]).body == "check your status again")
        #expect(try HTTP.postForm(port, "/update_sentence", [("cid", "12345")]).body == "check your status again")

        // A worker moves it; without a committer the job waits in `done`.
        try pipeline.cluster.startWorker("w1")
        try pipeline.cluster.waitUntil("the move") { try pipeline.job(7)?["status"] as? String == "done" }
        #expect(try pipeline.level(of: 7) == "bronze")
        let answer = try HTTP.postForm(port, "/update_sentence", [("cid", "7")])
        #expect(answer.status == 200 && answer.body == "7")
        #expect(try pipeline.level(of: 7) == "silver")
        #expect(try pipeline.job(7)?["status"] as? String == "committed")
        // Asked again: the same answer, nothing written twice.
        #expect(try HTTP.postForm(port, "/update_sentence", [("cid", "7")]).body == "7")
        #expect(try pipeline.relocations().filter { $0.cid == 7 }.count == 1)
        #expect(try TestFiles.sha256(pipeline.directories["silver"]! + "/g.mp4") == sums[7])
        #expect(pipeline.whereIs("g.mp4") == ["silver"])

        // The same level again: nothing to move.
        let again = try #require(try pipeline.post(7, 2000).json)
        #expect(again["status"] as? String == "in_place" && again["worker_id"] is NSNull)
    }

    @Test func badInputIsAClearJSONErrorAndEnqueuesNothing() throws {
        let pipeline = try Pipeline()
        defer { pipeline.tearDown() }
        try pipeline.addContents([(1, "ok.mp4", "bronze", 100)])
        let db = try pipeline.open()
        // A filename that would escape its level directory, planted straight in the database.
        try db.execute("INSERT INTO contents (cid, filename, content_level) VALUES (\(2), \("../../etc/passwd"), \("bronze"))")
        db.close()
        let port = try pipeline.cluster.startAPI()

        func expectError(_ response: HTTPResult, _ status: Int, _ code: String, _ fragment: String) {
            #expect(response.status == status, "\(response.body)")
            #expect(response.json?["error"] as? String == code, "\(response.body)")
            #expect((response.json?["message"] as? String)?.contains(fragment) == true, "\(response.body)")
        }
        expectError(try HTTP.postForm(port, "/post_sentence", [("count", "5")]), 400, "bad_request", "'cid' is missing")
        expectError(try HTTP.postForm(port, "/post_sentence", [("cid", "1")]), 400, "bad_request", "'count' is missing")
        expectError(try HTTP.postForm(port, "/post_sentence", [("cid", "1"), ("count", "abc")]), 400, "bad_request", "whole number")
        expectError(try HTTP.postForm(port, "/post_sentence", [("cid", "1"), ("count", "-5")]), 400, "bad_request", "at least 0")
        expectError(try HTTP.postForm(port, "/post_sentence", [("cid", "x1"), ("count", "5")]), 400, "bad_request", "'cid'")
        expectError(try HTTP.postForm(port, "/post_sentence", [("cid", "999"), ("count", "5")]), 404, "unknown_cid", "999")
        expectError(try HTTP.postForm(port, "/post_sentence", [("cid", "2"), ("count", "50000")]), 422, "invalid_filename", "'..'")
        expectError(try HTTP.postForm(port, "/update_sentence", []), 400, "bad_request", "'cid' is missing")
        expectError(try HTTP.postJSON(port, "/v1/contents/1/count", "{\"count\": \"many\"}"), 400, "bad_request", "whole number")
        expectError(try HTTP.postJSON(port, "/v1/contents/1/count", "{\"count\": 1.5}"), 400, "bad_request", "whole number")
        expectError(try HTTP.postJSON(port, "/v1/contents/1/count", "not json"), 400, "bad_request", "count")
        expectError(try HTTP.postJSON(port, "/v1/contents/0/count", "{\"count\": 1}"), 400, "bad_request", "between 1 and")
        expectError(try HTTP.get(port, "/v1/jobs/1"), 404, "no_job", "cid 1")
        expectError(try HTTP.get(port, "/v1/contents/31337"), 404, "unknown_cid", "31337")
        expectError(try HTTP.get(port, "/no/such/route"), 404, "not_found", "no route GET /no/such/route")
        let multipart = try HTTP.request(port, "POST", "/post_sentence", body: Data("--x\r\n".utf8),
                                         headers: ["Content-Type": "multipart/form-data; boundary=x"])
        expectError(multipart, 415, "unsupported_media_type", "application/x-www-form-urlencoded")
        let huge = String(repeating: "a", count: 200_000)
        expectError(try HTTP.postForm(port, "/post_sentence", [("cid", "1"), ("count", huge)]), 413, "payload_too_large", "larger than 65536 bytes")
        #expect(try pipeline.cluster.isIdle())

        // The /v1 route works for good input: 202 with the job.
        let accepted = try HTTP.postJSON(port, "/v1/contents/1/count", "{\"count\": 50000}")
        #expect(accepted.status == 202)
        #expect((accepted.json?["job"] as? [String: Any])?["target"] as? String == "gold")
        let content = try #require(try HTTP.get(port, "/v1/contents/1").json)
        #expect(content["content_level"] as? String == "bronze" && (content["job"] as? [String: Any])?["status"] as? String == "queued")
        #expect(try HTTP.get(port, "/healthz").status == 200)
        #expect(try HTTP.get(port, "/readyz").json?["status"] as? String == "ready")
    }

    @Test func hostileFilenamesAreRefusedAtEnqueueAndInjectionStringsAreJustData() throws {
        let pipeline = try Pipeline()
        defer { pipeline.tearDown() }
        let outside = try TemporaryDirectory("relocator-outside")
        defer { outside.remove() }
        let secret = try TestFiles.make(outside.path + "/secret", bytes: 64)
        let injection = "'; DROP TABLE contents; --.mp4"
        let escapes = "tab\tand \"quotes\" and back\\slash é.mp4"  // what the JSON writer must escape
        try pipeline.addContents([(1, "link.mp4", "bronze", nil), (2, "via/secret", "bronze", nil), (3, injection, "bronze", 500),
                                  (6, escapes, "bronze", nil)])
        symlink(outside.path + "/secret", pipeline.directories["bronze"]! + "/link.mp4")
        symlink(outside.path, pipeline.directories["bronze"]! + "/via")
        let db = try pipeline.open()
        try db.execute("INSERT INTO contents (cid, filename, content_level) VALUES (\(4), \("/etc/passwd"), \("bronze"))")
        try db.execute("INSERT INTO contents (cid, filename, content_level) VALUES (\(5), \("nul\u{0}byte"), \("bronze"))")
        db.close()
        let port = try pipeline.cluster.startAPI()
        for cid in [1, 2, 4, 5] {
            let refused = try pipeline.post(cid, 50000)
            #expect(refused.status == 422 && refused.json?["error"] as? String == "invalid_filename", "cid \(cid): \(refused.body)")
        }
        #expect(try pipeline.cluster.isIdle())

        let stored = try #require(try pipeline.post(3, 5000).json)
        #expect(stored["filename"] as? String == injection)
        #expect(try HTTP.get(port, "/v1/contents/3").json?["filename"] as? String == injection)
        #expect(try HTTP.get(port, "/v1/contents/6").json?["filename"] as? String == escapes)
        #expect(try pipeline.post(6, 50).json?["filename"] as? String == escapes)
        try pipeline.cluster.startWorker("w1")
        try pipeline.cluster.startCommitter()
        try pipeline.cluster.waitUntil("the commit") { try pipeline.job(3)?["status"] as? String == "committed" }
        #expect(pipeline.whereIs(injection) == ["silver"])
        #expect(try pipeline.level(of: 3) == "silver")
        #expect(try TestFiles.sha256(outside.path + "/secret") == secret)
    }

    @Test func withATokenMutatingRoutesNeedIt() throws {
        let pipeline = try Pipeline(environment: ["RELOCATOR_API_TOKEN": "s3cret-token"])
        defer { pipeline.tearDown() }
        try pipeline.addContents([(1, "a.mp4", "bronze", 100)])
        let port = try pipeline.cluster.startAPI()
        let refused = try HTTP.postForm(port, "/post_sentence", [("cid", "1"), ("count", "5000")])
        #expect(refused.status == 401 && refused.json?["error"] as? String == "unauthorized")
        let wrong = try HTTP.postForm(port, "/post_sentence", [("cid", "1"), ("count", "5000")], headers: ["Authorization": "Bearer s3cret-tokeN"])
        #expect(wrong.status == 401)
        let allowed = try HTTP.postForm(port, "/post_sentence", [("cid", "1"), ("count", "5000")], headers: ["Authorization": "Bearer s3cret-token"])
        #expect(allowed.status == 200)
        #expect(try HTTP.get(port, "/v1/queues").status == 200)
        #expect(!pipeline.cluster.log("api").contains("s3cret-token"))
    }
}

/// The operator commands against a running pipeline.
@Suite(.serialized) struct OperatorCommandTests {
    @Test func enqueueAndStatusFromTheShell() throws {
        let pipeline = try Pipeline()
        defer { pipeline.tearDown() }
        try pipeline.addContents([(1, "a.mp4", "bronze", 1000), (2, "b.mp4", "bronze", 1000)])
        let queued = try pipeline.cluster.run(["enqueue", "--cid", "1", "--count", "20000"])
        #expect(queued.status == 0 && queued.stdout.contains("created, bronze → gold"), "\(queued.stdout)\(queued.stderr)")
        let same = try pipeline.cluster.run(["enqueue", "--cid", "2", "--count", "5"])
        #expect(same.status == 0 && same.stdout.contains("already on bronze"))
        let unknown = try pipeline.cluster.run(["enqueue", "--cid", "99", "--count", "5"])
        #expect(unknown.status != 0 && unknown.stderr.contains("no content with cid 99"))
        let negative = try pipeline.cluster.run(["enqueue", "--cid", "1", "--count", "-3"])
        #expect(negative.status != 0)

        let status = try pipeline.cluster.run(["status", "--json"])
        let json = try #require(try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])
        #expect((json["queues"] as? [String: Int])?["gold"] == 1)
        let text = try pipeline.cluster.run(["status"]).stdout
        let gold = text.split(separator: "\n").first { $0.hasPrefix("gold ") }?.split(separator: " ")
        #expect(gold?.count ?? 0 >= 2 && gold?[1] == "1", "\(text)")
    }

    @Test func bulkEnqueueFromAFile() throws {
        let pipeline = try Pipeline()
        defer { pipeline.tearDown() }
        try pipeline.addContents((1...30).map { ($0, "f\($0)", "bronze", nil) })
        let csv = pipeline.root.path + "/counts.csv"
        try ((1...30).map { "\($0),\($0 % 2 == 0 ? 5000 : 500)" } + ["999,5000"]).joined(separator: "\n").write(toFile: csv, atomically: true, encoding: .utf8)
        // A line naming no content refuses the whole file, unless --skip-bad.
        let refused = try pipeline.cluster.run(["enqueue", "--file", csv])
        #expect(refused.status == 1 && refused.stderr.contains("line 31: no content has cid 999"), "\(refused.stderr)")
        let before = try JSONSerialization.jsonObject(with: Data(pipeline.cluster.run(["status", "--json"]).stdout.utf8)) as? [String: Any]
        #expect((before?["queues"] as? [String: Int])?["silver"] == 0, "nothing was submitted")
        let result = try pipeline.cluster.run(["enqueue", "--file", csv, "--skip-bad"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("skipped line 31: no content has cid 999"), "\(result.stderr)")
        #expect(result.stdout.contains("created 15, in_place 15"), "\(result.stdout)")
        let status = try pipeline.cluster.run(["status", "--json"])
        let json = try #require(try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])
        #expect((json["queues"] as? [String: Int])?["silver"] == 15)
        let bad = try pipeline.cluster.run(["enqueue", "--file", csv, "--cid", "1"])
        #expect(bad.status != 0)
    }

    @Test func passwordsNeverReachLogsOrErrors() throws {
        let redis = try RedisServer(password: "Redis-Pass-42")
        let test = try TestDatabase(.postgres)
        defer { test.drop() }
        let pipeline = try Pipeline()
        defer { pipeline.tearDown() }
        let secrets = ["Redis-Pass-42", "Wr0ng-Redis", "Sup3r-Secret-DB"]

        let committer = try pipeline.cluster.start("committer", ["committer"],
                                                   environment: ["DATABASE_URL": TestDatabase.text(test.withPassword("Sup3r-Secret-DB"))])
        #expect(committer.wait(timeout: .seconds(20)).map { $0 != 0 } == true)
        #expect(pipeline.cluster.log("committer").contains("authentication failed"))

        let worker = try pipeline.cluster.start("worker", ["worker"], environment: ["REDIS_URL": "redis://:Wr0ng-Redis@127.0.0.1:\(redis.port)/0"])
        #expect(worker.wait(timeout: .seconds(20)).map { $0 != 0 } == true)
        #expect(pipeline.cluster.log("worker").contains("authentication failed"))

        // A working API with a Redis password, logging at debug level.
        pipeline.cluster.environment["REDIS_URL"] = "redis://:Redis-Pass-42@127.0.0.1:\(redis.port)/0"
        let port = try pipeline.cluster.startAPI()
        #expect(try HTTP.get(port, "/readyz").status == 200)
        #expect(try HTTP.get(port, "/v1/queues").status == 200)
        pipeline.cluster.stop(keepLogs: true)
        for name in ["committer", "worker", "api"] {
            let log = pipeline.cluster.log(name)
            for secret in secrets { #expect(!log.contains(secret), "\(name) logged a password: \(log)") }
        }
    }

    @Test func aWorkerWarnsWhenRedisMayEvictJobs() throws {
        let server = try RedisServer()
        _ = try RedisClient.RedisConnection(url: server.url).send("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
        let pipeline = try Pipeline()
        defer { pipeline.tearDown() }
        pipeline.cluster.environment["REDIS_URL"] = "redis://127.0.0.1:\(server.port)/0"
        try pipeline.cluster.startWorker("w1")
        try pipeline.cluster.waitUntil("the warning") { pipeline.cluster.log("w1").contains("maxmemory-policy is 'allkeys-lru'") }
    }
}
