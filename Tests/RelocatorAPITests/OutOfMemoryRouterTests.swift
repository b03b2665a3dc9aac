import Foundation
import HummingbirdTesting
import RedisClient
import RelocatorCore
import Testing
@testable import RelocatorAPI

/// A queue that refuses writes as a Redis at its `maxmemory` (noeviction) does, from a gateway that
/// throws Redis' OOM error: every submission is a 503 naming it that wrote nothing, and `/readyz`
/// says the queue refuses writes until it takes them again. (RelocatorAPIServerTests'
/// RedisOutOfMemoryAPITests: a real Redis filled to its limit.)
@Suite struct OutOfMemoryRouterTests {
    @Test func aQueueRefusingWritesIsA503ThatWritesNothingAndReadyzSaysSo() async throws {
        let api = MemoryAPI(halfLife: .seconds(3600))
        try api.add([(1, "a.bin", "bronze"), (2, "b.bin", "bronze")])
        let shard = api.queue.keys.shard(0)
        let full = RedisError(code: .server, address: "memory", message: "OOM command not allowed when used memory > 'maxmemory'.")
        try await api.test { client in
            // cid 1 has a job before memory runs out.
            #expect(try await client.postForm("/post_sentence", "cid=1&count=20000").status == .ok)
            api.gateway.refuseWrites(full, problem: "refuses writes (\(full.message))")

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
            #expect(api.queue.job(2) == nil)
            #expect(api.queue.job(1)?.target == "gold" && api.queue.job(1)?.count == 20000)
            #expect(api.queue.list(shard.queue("gold")).count == 1)
            #expect(api.queue.hash(shard.hits).isEmpty)

            let ready = try await client.get("/readyz")
            #expect(ready.status == .serviceUnavailable, "\(ready.text)")
            #expect((ready.json?["redis"] as? String)?.hasPrefix("refuses writes (OOM") == true, "\(ready.text)")

            api.gateway.refuseWrites(nil)
            #expect(try await client.get("/readyz").status == .ok)
            #expect(try await client.postForm("/post_sentence", "cid=2&count=20000").status == .ok)
            #expect(api.queue.job(2)?.target == "gold")
        }
    }
}
