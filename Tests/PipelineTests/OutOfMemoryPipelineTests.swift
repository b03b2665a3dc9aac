import Foundation
import RedisClient
import RelocatorCore
import Testing
import TestSupport

/// Redis at a real, small `maxmemory` under the built binary: counts are 503s that write nothing
/// (a new job used to be written and answered 200; an existing one answered 500), and `/readyz`
/// says Redis refuses writes until it has room again.
@Suite(.serialized) struct OutOfMemoryPipelineTests {
    @Test func aFullRedisIsA503ThatWritesNothingAndReadyzSaysSo() throws {
        let server = try RedisServer()
        let pipeline = try Pipeline(redis: server.url.description, environment: ["RELOCATOR_HALF_LIFE": "1h"])
        defer { pipeline.tearDown() }
        try pipeline.addContents([(1, "a.bin", "bronze", nil), (2, "b.bin", "bronze", nil)])
        let port = try pipeline.cluster.startAPI()
        #expect(try pipeline.post(1, 20_000).status == 200)
        try RedisMemory.fill(port: server.port)

        for cid in [1, 2] {
            let answer = try pipeline.post(cid, cid == 1 ? 5_000 : 20_000)
            #expect(answer.status == 503 && (answer.json?["message"] as? String)?.contains("out of memory") == true, "cid \(cid): \(answer.body)")
        }
        let hits = try HTTP.postJSON(port, "/v1/contents/2/hits", #"{"n": 3}"#)
        #expect(hits.status == 503, "\(hits.body)")
        let redis = RedisConnection(url: server.url)
        defer { redis.close() }
        let keys = try KeySchema(prefix: pipeline.cluster.prefix)
        #expect(try redis.send("EXISTS", keys.shard(0).job(2)) == .integer(0))
        #expect(try redis.send("HGET", keys.shard(0).job(1), "target").string == "gold")
        let ready = try HTTP.get(port, "/readyz")
        #expect(ready.status == 503 && (ready.json?["redis"] as? String)?.contains("OOM") == true, "\(ready.body)")

        try RedisMemory.release(port: server.port)
        #expect(try HTTP.get(port, "/readyz").status == 200)
        #expect(try pipeline.post(2, 20_000).status == 200)
    }
}
