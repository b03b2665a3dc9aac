import Foundation
import RedisClient
import RelocatorCore
import Testing
import TestSupport

/// No request, count, score or clock stops a service, with the built binary: a count of
/// 9223372036854775807 is refused naming the bound (it used to crash-loop the committer), residents
/// scored 2^63 and 1e300 leave the rebalancer's rounds going, hits stored by a Redis clock two hours
/// ahead leave `serve` answering, and every route and command still answers.
@Suite(.serialized) struct ExtremesPipelineTests {
    @Test func noCountScoreOrClockStopsAService() throws {
        let pipeline = try Pipeline(environment: ["RELOCATOR_HALF_LIFE": "60s"])
        defer { pipeline.tearDown() }
        try pipeline.addContents([(1, "a.bin", "silver", 4096), (2, "b.bin", "silver", 4096), (3, "c.bin", "bronze", 4096), (4, "d.bin", "bronze", 4096)])
        try pipeline.check(pipeline.cluster.run(["levels", "set", "gold", "--high-water", "90"]), "levels set")
        let port = try pipeline.cluster.startAPI()
        let committer = try pipeline.cluster.startCommitter(arguments: ["--rebalance-interval", "1s"])
        try pipeline.cluster.startWorker("w1")
        let redis = RedisConnection(url: try TestEnvironment.redisURL())
        defer { redis.close() }
        let keys = try KeySchema(prefix: pipeline.cluster.prefix)
        func publishedAt() throws -> Int64 {
            guard let text = try redis.send("GET", keys.control.placement).string,
                  let json = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { return 0 }
            return (json["published_at"] as? NSNumber)?.int64Value ?? 0
        }
        func waitForRounds(_ rounds: Int) throws {
            var seen = try publishedAt(), count = 0
            try pipeline.cluster.waitUntil("\(rounds) rounds of the rebalancer", timeout: .seconds(30)) {
                let now = try publishedAt()
                if now != seen { seen = now; count += 1 }
                return count >= rounds || !committer.isRunning
            }
        }

        // The count that crash-looped the committer, by form, by JSON and by command: refused.
        let form = try pipeline.post(3, 9_223_372_036_854_775_807)
        #expect(form.status == 400 && (form.json?["message"] as? String)?.contains("9007199254740991 (2^53 − 1") == true, "\(form.body)")
        let json = try HTTP.postJSON(port, "/v1/contents/3/count", #"{"count": 9223372036854775807}"#)
        #expect(json.status == 400, "\(json.body)")
        let command = try pipeline.cluster.run(["enqueue", "--cid", "3", "--count", "9223372036854775807"])
        #expect(command.status != 0 && command.stderr.contains("9007199254740991"), "\(command.status) \(command.stderr)")
        let csv = pipeline.root.path + "/counts.csv"
        try "3,9223372036854775807\n4,9007199254740992\n".write(toFile: csv, atomically: true, encoding: .utf8)
        let bulk = try pipeline.cluster.run(["enqueue", "--file", csv])
        #expect(bulk.status == 1 && bulk.stderr.contains("expected a whole number from 0 to 9007199254740991"), "\(bulk.stderr)")
        // The largest count is taken (gold's max_counts rises to it).
        #expect(try pipeline.post(3, 9_007_199_254_740_991).status == 200)

        // Residents scored as a count of 2^63 left them, and 1e300: the rounds go on.
        try redis.send("ZADD", keys.shard(0).residents("silver"), "9223372036854775808", 1)
        try redis.send("ZADD", keys.shard(0).residents("silver"), "1e300", 2)
        try redis.send("ZADD", keys.shard(0).residents("bronze"), "+inf", 4)
        try waitForRounds(3)
        #expect(committer.isRunning, "the committer stopped: \(pipeline.cluster.log("committer"))")

        // Hits whose counter was stored by a Redis clock two hours ahead of now (its clock stepped
        // back): nothing decays and serve answers.
        let time = try redis.send("TIME").array!.compactMap(\.string).compactMap(Int64.init)
        try redis.send("HSET", keys.shard(0).hits, 4, "100:\(time[0] * 1000 + 2 * 3600 * 1000)")
        let hits = try HTTP.postJSON(port, "/v1/contents/4/hits", #"{"n": 1}"#)
        #expect([200, 202].contains(hits.status), "\(hits.body)")
        #expect((hits.json?["value"] as? Double).map { $0 > 100 && $0 <= 101 } == true, "\(hits.body)")
        #expect(try HTTP.get(port, "/healthz").status == 200)

        // A heartbeat and counters at Int64's bounds, a job whose numbers are too.
        try redis.send("SADD", keys.control.workers, "w-x")
        try redis.send("HSET", keys.control.heartbeat("w-x"), "kind", "worker", "beat_at", Int64.min, "started_at", Int64.max,
                       "disks", "gold=9223372036854775807,-1,9223372036854775807", "levels", "gold")
        try redis.send("HSET", keys.shard(0).stats, "moved", Int64.max, "committed", Int64.min)
        try redis.send("HSET", keys.shard(0).job(2), "cid", 2, "count", Int64.max, "filename", "b.bin", "db_level", "silver", "target", "gold",
                       "status", "moving", "gen", 1, "attempts", Int64.max, "worker_id", "w-x", "bytes_done", Int64.max, "bytes_total", 1,
                       "started_at", Int64.min, "enqueued_at", Int64.max, "updated_at", Int64.min)
        try redis.send("LPUSH", keys.shard(0).processing("w-x"), "2:1")
        // Every read route, the dashboard and /metrics answer; so do the commands.
        for path in ["/metrics", "/ui", "/ui/workers", "/ui/dead", "/ui/levels", "/v1/queues", "/v1/contents/1/why", "/v1/contents/2/why",
                     "/v1/jobs/2", "/v1/contents/3", "/v1/levels"] {
            let answer = try HTTP.get(port, path)
            #expect(answer.status == 200, "\(path): \(answer.status) \(answer.body.prefix(300))")
        }
        for arguments in [["status"], ["status", "--json"], ["why", "1"], ["why", "2"], ["why", "3", "--json"], ["plan"], ["plan", "--json"],
                          ["dlq", "list"]] {
            let result = try pipeline.cluster.run(arguments)
            #expect(result.status == 0, "\(arguments): \(result.stderr)")
        }
        try waitForRounds(2)
        #expect(committer.isRunning, "the committer stopped: \(pipeline.cluster.log("committer"))")
    }
}
