import Foundation
import RedisClient
import RelocatorCore
import Testing
import TestSupport

/// The dashboard of the built binary while a worker copies under a bandwidth limit: the move in
/// flight shows its bytes copied of its total as the copy goes, then the move lands and counts in
/// the chart's minute.
@Suite(.serialized) struct DashboardPipelineTests {
    @Test func aThrottledCopyShowsItsBytesCopiedOfItsTotalWhileItRuns() throws {
        let mebibyte = 1 << 20
        let pipeline = try Pipeline(goldKiB: 32 * 1024)
        defer { pipeline.tearDown() }
        try pipeline.check(pipeline.cluster.run(["levels", "set", "gold", "--bandwidth", "2MiB"]), "levels set")
        // Above the 8 MiB from which a worker reports its progress (once a second).
        try pipeline.addContents([(1, "big.bin", "silver", 12 * mebibyte)])
        let port = try pipeline.cluster.startAPI()
        try pipeline.cluster.startCommitter(arguments: ["--rebalance-interval", "1s"])
        try pipeline.cluster.startWorker("w1", concurrency: 1)
        // The worker learns the limit from the placement the rebalancer publishes.
        let redis = RedisConnection(url: try TestEnvironment.redisURL())
        defer { redis.close() }
        let key = try KeySchema(prefix: pipeline.cluster.prefix).control.placement
        try pipeline.cluster.waitUntil("the published bandwidth limit", timeout: .seconds(30)) {
            try redis.send("GET", key).string?.contains("\(2 * mebibyte)") == true
        }
        // Two heartbeats after that: the worker has read it.
        try PlacementProofTests().waitForTwoHeartbeats(of: ["w1"], pipeline, redis)
        #expect(try HTTP.get(port, "/ui/workers").body.contains(#"<tr data-worker="w1">"#))
        #expect(try pipeline.post(1, 20_000).status == 200)

        // Mid-copy (12 MiB at 2 MiB/s): the page shows bytes copied of 12 MiB, more than none and less than all.
        var copied: [Double] = []
        var last = ""
        defer { if Set(copied).count < 2 { Issue.record("the last page: \(last)\njob: \((try? HTTP.get(port, "/v1/jobs/1").body) ?? "")") } }
        try pipeline.cluster.waitUntil("two readings of the copy's progress on the page", timeout: .seconds(30)) {
            let page = try HTTP.get(port, "/ui/workers").body
            last = page
            if let match = page.firstMatch(of: /data-field="copied">([0-9.]+) (KiB|MiB)<\/td><td class="num" data-field="total">12 MiB</) {
                let value = Double(match.output.1) ?? -1
                copied.append(match.output.2 == "KiB" ? value / 1024 : value)
                #expect(page.contains(#"<progress max="100" value=""#))
            }
            return Set(copied).count >= 2
        }
        #expect(copied.allSatisfy { $0 > 0 && $0 < 12 }, "\(copied)")
        #expect(copied == copied.sorted(), "the bytes copied only grow: \(copied)")
        try pipeline.cluster.waitUntil("the move committed", timeout: .seconds(60)) { try pipeline.level(of: 1) == "gold" }
        // The move counts in this hour's chart, from Redis' per-minute counts.
        try pipeline.cluster.waitUntil("the move in the chart", timeout: .seconds(10)) {
            try HTTP.get(port, "/ui").body.contains(#"data-field="moves-last-hour">1<"#)
        }
    }
}
