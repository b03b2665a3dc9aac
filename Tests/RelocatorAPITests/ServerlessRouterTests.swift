import Foundation
import Hummingbird
import HummingbirdTesting
import RelocatorApp
import RelocatorCore
import RelocatorTesting
import Testing
@testable import RelocatorAPI

/// The routes and the use cases behind them over the memory queue and store: no Redis, no
/// database, no socket.
@Suite struct ServerlessRouterTests {
    @Test func theOriginalRoutesAnswerTheirBytesAndUpdateSentenceCommitsADoneMove() async throws {
        let api = MemoryAPI()
        try api.add([(7, "g.mp4", "bronze")])
        try await api.test { client in
            let posted = try await client.postForm("/post_sentence", "cid=7&count=1964")
            #expect(posted.status == .ok && posted.headers[.contentType] == "application/json")
            #expect(posted.text == #"{"cid": "7", "count": "1964", "target": "silver", "db_level": "bronze", "filename": "g.mp4", "worker_id": null, "status": "update"}"#)
            #expect(try await client.postForm("/update_sentence", "cid=7").text == "check your status again")
        }
        let delivery = try #require(try api.claim())
        let checksum = try Checksum(algorithm: .xxh128, hex: String(repeating: "ab", count: 16))
        #expect(try api.queue.complete(delivery, .moved(checksum, bytes: 10, method: .copied, foundIn: nil)) == .done)
        try await api.test { client in
            #expect(try await client.postForm("/update_sentence", "cid=7").text == "7")
            let content = try #require(try await client.get("/v1/contents/7").json)
            #expect(content["content_level"] as? String == "silver")
        }
        #expect(try api.store.history(cid: 7).map(\.to) == ["silver"])
        #expect(api.queue.job(7)?.status == .committed)
    }

    /// The API's clock two hours ahead of the queue's: a level it read before a move is still
    /// known to be old, and the count is placed from where the file is now.
    @Test(arguments: [Int64(7_200_000), -7_200_000])
    func aLevelReadBeforeAMoveIsReadAgainWhateverTheClocks(skew: Int64) async throws {
        let api = MemoryAPI(skew: skew)
        try api.add([(7, "g.mp4", "bronze")])
        try await api.test { client in
            // Read (and cached) while on bronze.
            let placed = try await client.postJSON("/v1/contents/7/count", #"{"count": 5}"#)
            #expect(placed.status == .ok)
        }
        api.advance(.seconds(1))
        // Reconcile (or an operator) records the file on gold meanwhile.
        try Commit.recordLevel(cid: 7, from: "bronze", to: "gold", by: "reconcile", store: api.store, queue: api.queue)
        api.advance(.seconds(1))
        try await api.test { client in
            let moved = try #require(try await client.postJSON("/v1/contents/7/count", #"{"count": 5}"#).json)
            #expect(moved["outcome"] as? String == "created")
            let job = try #require(moved["job"] as? [String: Any])
            #expect(job["from"] as? String ?? job["db_level"] as? String == "gold", "\(job)")
        }
    }

    @Test func aQueueOrStoreOutageIsA503NamingIt() async throws {
        let api = MemoryAPI()
        try api.add([(7, "g.mp4", "bronze")])
        api.queue.setUnavailable(true)
        try await api.test { client in
            let refused = try await client.postJSON("/v1/contents/7/count", #"{"count": 20000}"#)
            #expect(refused.status == .serviceUnavailable && refused.json?["error"] as? String == "unavailable", "\(refused.text)")
            #expect((refused.json?["message"] as? String)?.contains("Redis") == true)
            let ready = try await client.get("/readyz")
            #expect(ready.status == .serviceUnavailable && ready.text.contains("unreachable"), "\(ready.text)")
        }
        api.queue.setUnavailable(false)
        api.store.setUnavailable(true)
        try await api.test { client in
            let refused = try await client.get("/v1/contents/7")
            #expect(refused.status == .serviceUnavailable && (refused.json?["message"] as? String)?.contains("database") == true, "\(refused.text)")
        }
    }

    @Test func pauseAndResumeNameTheLevelAndAnUnknownOneIsA404() async throws {
        let api = MemoryAPI()
        try await api.test { client in
            let unknown = try await client.execute(uri: "/v1/levels/platinum/pause", method: .post)
            #expect(unknown.status == .notFound && unknown.json?["error"] as? String == "unknown_level")
            #expect(try await client.execute(uri: "/v1/levels/gold/pause", method: .post).status == .ok)
            let queues = try await client.get("/v1/queues")
            #expect(queues.json?["paused"] as? [String] == ["gold"], "\(queues.text)")
            #expect(try await client.execute(uri: "/v1/levels/gold/resume", method: .post).status == .ok)
        }
        #expect(try api.queue.stats(levels: ["gold"]).levels.first?.paused == false)
    }

    @Test func whyAndTheDeadLettersReadThroughTheApplication() async throws {
        let api = MemoryAPI()
        try api.add([(7, "g.mp4", "bronze")])
        try await api.test { client in
            let queued = try await client.postJSON("/v1/contents/7/count", #"{"count": 20000}"#)
            #expect(queued.status == .accepted)
        }
        let delivery = try #require(try api.claim())
        #expect(try api.queue.complete(delivery, .failed(.sourceMissing, message: "source_missing: gone", permanent: true, delay: .zero,
                                                         maxAttempts: 5)) == .dead)
        try await api.test { client in
            let why = try #require(try await client.get("/v1/contents/7/why").json)
            #expect((why["summary"] as? String)?.contains("is on bronze according to the database") == true, "\(why)")
            let dead = try await client.get("/v1/dead")
            #expect(dead.text.contains("source_missing") && dead.text.contains("g.mp4"), "\(dead.text)")
            let replay = try await client.postJSON("/v1/dead/replay", #"{"cids": [7]}"#)
            #expect(replay.status == .ok && replay.text.contains("7:"), "\(replay.text)")
        }
        #expect(api.queue.job(7)?.status == .queued)
    }
}
