import Foundation
import HummingbirdTesting
import JobQueue
import RedisClient
import RelocatorCore
import Testing
import TestSupport
@testable import RelocatorAPI

/// A Redis at its `maxmemory` (noeviction), reached by writing to a private server with a real,
/// small limit: every submission is a 503 that wrote nothing, and `/readyz` says Redis refuses
/// writes until it has room again. (RelocatorAPITests' OutOfMemoryRouterTests: the same answers from
/// a gateway that refuses the writes, without a server.)
@Suite struct RedisOutOfMemoryAPITests {
    @Test func aFullRedisIsA503ThatWritesNothingAndReadyzSaysSo() async throws {
        let server = try RedisServer()
        let api = try APIFixture(redisURL: server.url, halfLife: .seconds(3600))
        defer { api.tearDown() }
        try api.addContents([(1, "a.bin", "bronze", nil), (2, "b.bin", "bronze", nil)])
        let shard = api.queue.keys.shard(0)
        try await api.test { client in
            // cid 1 has a job before memory runs out.
            #expect(try await client.postForm("/post_sentence", "cid=1&count=20000").status == .ok)
            try RedisMemory.fill(port: server.port)

            for (uri, body) in [("/post_sentence", "cid=1&count=5000"), ("/post_sentence", "cid=2&count=20000")] {
                let response = try await client.postForm(uri, body)
                #expect(response.status == .serviceUnavailable, "\(body): \(response.text)")
                #expect(response.json?["message"] as? String == "Redis is out of memory (maxmemory reached) and refuses new writes; nothing was written; try again later")
            }
            for (uri, body) in [("/v1/contents/1/count", #"{"count": 5000}"#), ("/v1/contents/2/count", #"{"count": 20000}"#),
                                ("/v1/contents/2/hits", #"{"n": 5}"#)] {
                let response = try await client.postJSON(uri, body)
                #expect(response.status == .serviceUnavailable, "\(uri): \(response.text)")
            }
            // Nothing of cid 2 was written; cid 1's job is as it was.
            #expect(try api.redis.send("EXISTS", shard.job(2)) == .integer(0))
            #expect(try api.redis.send("HGET", shard.job(1), "target").string == "gold")
            #expect(try api.redis.send("HGET", shard.job(1), "count").string == "20000")
            #expect(try api.redis.send("LLEN", shard.queue("gold")) == .integer(1))
            #expect(try api.redis.send("EXISTS", shard.hits) == .integer(0))

            let ready = try await client.get("/readyz")
            #expect(ready.status == .serviceUnavailable, "\(ready.text)")
            #expect((ready.json?["redis"] as? String)?.hasPrefix("refuses writes (OOM") == true, "\(ready.text)")

            try RedisMemory.release(port: server.port)
            #expect(try await client.get("/readyz").status == .ok)
            #expect(try await client.postForm("/post_sentence", "cid=2&count=20000").status == .ok)
            #expect(try api.redis.send("HGET", shard.job(2), "target").string == "gold")
        }
    }
}
