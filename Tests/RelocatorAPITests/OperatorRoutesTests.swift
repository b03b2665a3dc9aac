import Foundation
import Hummingbird
import HummingbirdTesting
import JobQueue
import RelocatorCore
import Testing
import TestSupport
@testable import RelocatorAPI

/// What operators read and steer over `/v1`: jobs with their progress, dead letters, pausing a
/// level, the queues, the why-report and readiness, over the memory queue and store (what a real
/// schema and a real Redis answer: RelocatorAPIServerTests).
@Suite struct OperatorRoutesTests {
    @Test func aJobShowsBytesDoneAndADeadJobItsReason() async throws {
        let api = MemoryAPI()
        try api.add([(3, "c.mp4", "bronze")])
        try await api.test { client in
            let accepted = try await client.postJSON("/v1/contents/3/count", #"{"count": 50000}"#)
            #expect(accepted.status == .accepted, "\(accepted.text)")
            let job = try #require(accepted.json?["job"] as? [String: Any])
            #expect(job["target"] as? String == "gold" && job["bytes_done"] as? Int == 0 && job["attempts"] as? Int == 0)
            #expect((job["enqueued_at"] as? String)?.hasSuffix("Z") == true)
        }
        let claimed = try #require(try api.claim())
        #expect(try api.queue.record(claimed, .copied(4096, of: 10000)))
        try await api.test { client in
            let moving = try #require(try await client.get("/v1/jobs/3").json)
            #expect(moving["status"] as? String == "moving" && moving["bytes_done"] as? Int == 4096 && moving["bytes_total"] as? Int == 10000)
            #expect(moving["worker_id"] as? String == "w1")
        }
        try api.kill(claimed)
        try await api.test { client in
            let dead = try #require(try await client.get("/v1/jobs/3").json)
            #expect(dead["status"] as? String == "dead" && dead["reason"] as? String == "source_missing")
            #expect((dead["last_error"] as? String)?.contains("on no level's disk") == true)
            let list = try #require(try await client.get("/v1/dead").json?["dead"] as? [[String: Any]])
            #expect(list.count == 1 && list[0]["reason"] as? String == "source_missing" && list[0]["cid"] as? Int == 3)
        }
    }

    @Test func replayAndPurgeWorkPerJobAndForAll() async throws {
        let api = MemoryAPI()
        try api.add([(1, "a", "bronze"), (2, "b", "bronze"), (3, "c", "bronze")])
        for cid in 1...3 { _ = try await api.service.submit(cid: Int64(cid), count: 5000, from: .countRoute) }
        while let job = try api.claim() { try api.kill(job) }
        try await api.test { client in
            let replayed = try await client.postJSON("/v1/dead/replay", #"{"cids": [2]}"#)
            #expect(replayed.json?["replayed"] as? [String] != nil && (replayed.json?["replayed"] as? [String])?.count == 1, "\(replayed.text)")
            #expect(try await client.get("/v1/jobs/2").json?["status"] as? String == "queued")
            let purged = try await client.postJSON("/v1/dead/purge", #"{"all": true}"#)
            #expect((purged.json?["purged"] as? [String])?.count == 2, "\(purged.text)")
            #expect((try await client.get("/v1/dead").json?["dead"] as? [Any])?.isEmpty == true)
            let bad = try await client.postJSON("/v1/dead/replay", #"{"cids": [0]}"#)
            #expect(bad.status == .badRequest)
        }
    }

    /// Who queued a job and why its target, from the count that queued it to a replay of its dead
    /// letter: in the job view, in why and on the dashboard's dead letters.
    @Test func whySaysWhoQueuedTheJobFromTheCountToAReplay() async throws {
        let api = MemoryAPI(halfLife: .seconds(3600))
        try api.add([(1, "a.mp4", "bronze"), (2, "b.mp4", "bronze")])
        try await api.test { client in
            #expect(try await client.postForm("/post_sentence", "cid=1&count=5000").status == .ok)
            let job = try #require(try await client.get("/v1/jobs/1").json)
            let by = try #require(job["queued_by"] as? [String: Any])
            #expect(by["who"] as? String == "POST /post_sentence" && by["rule"] as? String == "count 5000 falls in silver (1000–9999)")
            #expect(job["next_queued_by"] is NSNull)
            let why = try #require(try await client.get("/v1/contents/1/why").json?["summary"] as? String)
            #expect(why.contains("It was queued by POST /post_sentence; its target: count 5000 falls in silver (1000–9999)."), "\(why)")

            #expect(try await client.postJSON("/v1/contents/2/hits", #"{"n": 20000}"#).status == .accepted)
            let hits = try #require(try await client.get("/v1/jobs/2").json?["queued_by"] as? [String: Any])
            #expect(hits["who"] as? String == "POST /v1/contents/{cid}/hits" && (hits["rule"] as? String)?.hasPrefix("count ") == true)

            try api.kill(try #require(try api.claim(levels: ["silver"])))
            #expect(try await client.get("/ui/dead").text.contains("POST /post_sentence: count 5000 falls in silver (1000–9999)"))
            #expect(try await client.postJSON("/v1/dead/replay", #"{"cids": [1]}"#).status == .ok)
            let replayed = try #require(try await client.get("/v1/contents/1/why").json?["summary"] as? String)
            #expect(replayed.contains("It was queued by a replay (POST /v1/dead/replay) of a job queued by POST /post_sentence; "
                                      + "its target: count 5000 falls in silver (1000–9999)."), "\(replayed)")
        }
    }

    @Test func pausingALevelShowsInQueuesAndAnUnknownLevelIs404() async throws {
        let api = MemoryAPI()
        api.configuration.withLock { $0.token = "t0ken" }
        try await api.test { client in
            let refused = try await client.execute(uri: "/v1/levels/gold/pause", method: .post)
            #expect(refused.status == .unauthorized)
            let auth: HTTPFields = [.authorization: "Bearer t0ken"]
            let paused = try await client.execute(uri: "/v1/levels/gold/pause", method: .post, headers: auth)
            #expect(paused.status == .ok && paused.json?["paused"] as? Bool == true, "\(paused.text)")
            let queues = try #require(try await client.get("/v1/queues").json)
            #expect(queues["paused"] as? [String] == ["gold"])
            #expect(queues["deferred"] as? Int == 0 && queues["workers"] is [Any])
            #expect((queues["queues"] as? [String: Int])?["gold"] == 0)
            #expect(try await client.execute(uri: "/v1/levels/gold/resume", method: .post, headers: auth).status == .ok)
            #expect(try await client.get("/v1/queues").json?["paused"] as? [String] == [])
            let unknown = try await client.execute(uri: "/v1/levels/platinum/pause", method: .post, headers: auth)
            #expect(unknown.status == .notFound && unknown.json?["error"] as? String == "unknown_level")
        }
        #expect(try api.queue.stats(levels: ["gold"]).levels.allSatisfy { !$0.paused })
    }

    @Test func whyTellsTheRangeTheDatabaseTheDisksTheJobAndTheHistory() async throws {
        let disks = try TemporaryDirectory("relocator-levels")
        defer { disks.remove() }
        for level in ["bronze", "silver", "gold"] {
            try FileManager.default.createDirectory(atPath: disks.path + "/\(level)/dir", withIntermediateDirectories: true)
        }
        let api = MemoryAPI(directories: LevelDirectories(["bronze", "silver", "gold"].map { ($0, disks.path + "/" + $0) }))
        try api.add([(5, "dir/e.mp4", "bronze")])
        try Data(count: 100).write(to: URL(fileURLWithPath: disks.path + "/bronze/dir/e.mp4"))
        // A stray copy on gold too, as after a lost write.
        try Data(count: 3).write(to: URL(fileURLWithPath: disks.path + "/gold/dir/e.mp4"))
        _ = try await api.service.submit(cid: 5, count: 1500, from: .countRoute)
        let delivery = try #require(try api.claim())
        #expect(try api.queue.complete(delivery, .failed(.noSpace, message: "no_space: silver is full", permanent: false, delay: .seconds(60),
                                                         maxAttempts: 5)) == .retrying)
        let report = WhyReport(try await api.service.why(cid: 5))
        #expect(report.countLevel == "silver" && report.lastCount == 1500 && !report.countAboveEveryRange)
        #expect(report.foundOn == ["bronze", "gold"])
        #expect(report.disks.first { $0.level == "bronze" }?.size == 100)
        #expect(report.job?.job.status == .retrying && report.job?.nextRetryAt != nil)
        #expect(report.summary.contains("falls in silver (1000–9999)") && report.summary.contains("last error: no_space: silver is full"))
        #expect(report.summary.contains("The file is on disk at: bronze, gold."))
        try await api.test { client in
            let json = try #require(try await client.get("/v1/contents/5/why").json)
            #expect(json["count_level"] as? String == "silver" && json["content_level"] as? String == "bronze")
            #expect((json["job"] as? [String: Any])?["status"] as? String == "retrying")
            #expect((json["levels"] as? [[String: Any]])?.count == 3 && json["history"] is [Any])
            #expect((json["disks"] as? [[String: Any]])?.first?["state"] as? String == "file")
            #expect(try await client.get("/v1/contents/77/why").status == .notFound)
        }
    }

    /// A database whose schema is behind the binary's: 503, saying what is missing, until it is
    /// current. (RelocatorAPIServerTests: the words from a real SQLite file migrated half way.)
    @Test func readinessIs503UntilTheSchemaIsCurrentAndSaysWhatIsMissing() async throws {
        let api = MemoryAPI()
        let behind = "schema at 0002, this binary needs 0009: run relocator migrate"
        api.store.setSchemaProblem(behind)
        try await api.test { client in
            let answer = try await client.get("/readyz")
            #expect(answer.status == .serviceUnavailable && answer.json?["redis"] as? String == "ok")
            #expect(answer.json?["database"] as? String == behind, "\(answer.text)")
        }
        api.store.setSchemaProblem(nil)
        try await api.test { client in
            let ready = try await client.get("/readyz")
            #expect(ready.status == .ok && ready.json?["status"] as? String == "ready", "\(ready.text)")
        }
    }

    /// (RelocatorAPIServerTests: the same with a Redis URL where nothing listens.)
    @Test func readinessIs503WhenTheQueueDoesNotAnswer() async throws {
        let api = MemoryAPI()
        api.queue.setUnavailable(true)
        try await api.test { client in
            let answer = try await client.get("/readyz")
            #expect(answer.status == .serviceUnavailable && (answer.json?["redis"] as? String)?.hasPrefix("unreachable") == true, "\(answer.text)")
            #expect(answer.json?["database"] as? String == "ok")
        }
    }
}
