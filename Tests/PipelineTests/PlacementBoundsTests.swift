import Foundation
import RedisClient
import RelocatorCore
import SQLStore
import Testing
import TestSupport

/// Placement that does what it says, with the built binary: shedding stops at the low watermark, a
/// content that can never fit displaces nobody, and the latest count is the one placement uses.
@Suite(.serialized) struct PlacementBoundsTests {
    static let mebibyte = 1 << 20

    /// Percent of the gold tmpfs in use, from statvfs as the workers see it.
    func goldPercent(_ pipeline: Pipeline) throws -> Double {
        var stats = statvfs()
        guard statvfs(pipeline.gold.path, &stats) == 0 else { throw POSIXError(.EIO) }
        let size = Double(stats.f_blocks) * Double(stats.f_frsize)
        return (size - Double(stats.f_bfree) * Double(stats.f_frsize)) * 100 / size
    }

    func jobStatuses(_ pipeline: Pipeline, _ cids: ClosedRange<Int>) throws -> [Int: String] {
        var statuses: [Int: String] = [:]
        for cid in cids { if let status = try pipeline.job(cid)?["status"] as? String { statuses[cid] = status } }
        return statuses
    }

    func onGold(_ pipeline: Pipeline, _ cids: ClosedRange<Int>) -> [Int] {
        cids.filter { pipeline.whereIs("c-\($0).bin") == ["gold"] }
    }

    /// The placement snapshot the rebalancer last published (its `published_at`, ms): one per round.
    func publishedAt(_ pipeline: Pipeline, _ redis: RedisConnection) throws -> Int64 {
        let key = try KeySchema(prefix: pipeline.cluster.prefix).control.placement
        guard let text = try redis.send("GET", key).string,
              let json = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { return 0 }
        return (json["published_at"] as? NSNumber)?.int64Value ?? 0
    }

    /// Waits for `rounds` more rounds of the rebalancer.
    func waitForRounds(_ rounds: Int, _ pipeline: Pipeline, _ redis: RedisConnection) throws {
        var seen = try publishedAt(pipeline, redis), count = 0
        try pipeline.cluster.waitUntil("\(rounds) rounds of the rebalancer", timeout: .seconds(30)) {
            let now = try publishedAt(pipeline, redis)
            if now != seen { seen = now; count += 1 }
            return count >= rounds
        }
    }

    /// Gold is 40 MiB with no watermark and takes 32 contents of 1 MiB (80 %); then it gets a high
    /// watermark of 75 % and a low one of 60 %: the rebalancer sheds its coldest down to 60 % — not
    /// one content more — and 28 more contents whose counts interleave with the residents' then
    /// wait for room and displace colder residents: gold never falls more than one content under
    /// its low watermark, and ends holding the hottest contents.
    @Test func sheddingStopsWithinOneContentOfTheLowWatermarkAndTheHottestStay() throws {
        let pipeline = try Pipeline(goldKiB: 40 * 1024, environment: ["RELOCATOR_DEFER_RETRY_MS": "300"])
        defer { pipeline.tearDown() }
        let cids = 1...60
        // Counts 20,002 … 20,120: the first 32 every other one, the 28 later ones in between.
        func count(_ cid: Int) -> Int { cid <= 32 ? 20_000 + 4 * cid : 20_000 + 4 * (cid - 32) + 2 }
        try pipeline.addContents(cids.map { ($0, "c-\($0).bin", "silver", Self.mebibyte) })
        try pipeline.cluster.startAPI()
        try pipeline.cluster.startCommitter(arguments: ["--rebalance-interval", "1s"])
        try pipeline.cluster.startWorker("w1", concurrency: 2)
        try pipeline.cluster.startWorker("w2", concurrency: 2)
        for cid in 1...32 { #expect(try pipeline.post(cid, count(cid)).status == 200) }
        try pipeline.cluster.waitUntil("32 contents on gold", timeout: .seconds(60)) { try (1...32).allSatisfy { try pipeline.level(of: $0) == "gold" } }
        let full = try goldPercent(pipeline)
        #expect(full > 78, "gold at \(full) %")

        let one = 100.0 / 40  // one content, in percent of gold
        try pipeline.check(pipeline.cluster.run(["levels", "set", "gold", "--high-water", "75", "--low-water", "60"]), "levels set")
        var lowest = 100.0
        var finished = false
        defer {
            if !finished {
                let plan = (try? pipeline.cluster.run(["plan"]).stdout) ?? ""
                print("DIAG gold=\(onGold(pipeline, cids)) lowest=\(lowest) now=\((try? goldPercent(pipeline)) ?? -1)\n\(plan)\n"
                      + pipeline.cluster.log("committer").split(separator: "\n").filter { $0.contains("rebalanc") }.suffix(20).joined(separator: "\n"))
            }
        }
        // Shedding goes in rounds (a round waits for the last one's moves to land): done once gold is
        // within one content of its low watermark and nothing moves.
        try pipeline.cluster.waitUntil("gold shed to its low watermark", timeout: .seconds(90)) {
            lowest = min(lowest, try goldPercent(pipeline))
            let moving = try jobStatuses(pipeline, 1...32).values.filter { $0 != "committed" }
            let percent = try goldPercent(pipeline)
            return moving.isEmpty && percent <= 60 + one
        }
        let shed = try goldPercent(pipeline)
        #expect(shed >= 60 - one && shed <= 60 + one, "after shedding gold is at \(shed) %, the low watermark is 60 %")
        #expect(lowest >= 60 - one, "gold fell to \(lowest) %")
        // The coldest went: every content still on gold is hotter than every one that left.
        let stayed = onGold(pipeline, 1...32), left = (1...32).filter { !stayed.contains($0) }
        #expect(!left.isEmpty && stayed.map(count).min()! > left.map(count).max()!, "stayed \(stayed), left \(left)")

        // Hotter and colder contents than the residents, all naming gold, arrive at once.
        for cid in 33...60 { #expect(try pipeline.post(cid, count(cid)).status == 200) }
        try pipeline.cluster.waitUntil("gold to hold the hottest contents, nothing moving", timeout: .seconds(150)) {
            lowest = min(lowest, try goldPercent(pipeline))
            let statuses = try jobStatuses(pipeline, cids)
            guard !statuses.values.contains(where: { ["queued", "moving", "retrying", "done"].contains($0) }) else { return false }
            let gold = onGold(pipeline, cids), off = cids.filter { !gold.contains($0) }
            guard let coldestOn = gold.map(count).min(), let hottestOff = off.map(count).max() else { return false }
            return coldestOn > hottestOff
        }
        #expect(lowest >= 60 - one, "gold fell to \(lowest) % while contents were displaced")
        #expect(try goldPercent(pipeline) <= 75 + 0.5)
        let dead = try HTTP.get(pipeline.cluster.apiPort!, "/v1/dead").json?["dead"] as? [Any] ?? []
        #expect(dead.isEmpty, "no job died: \(dead)")
        finished = true
    }

    /// Gold is 16 MiB with a 50 % high watermark and six residents of 1 MiB; a 10 MiB content gets
    /// the hottest count. It can never fit below 8 MiB: it displaces nobody, and goes to the dead
    /// letters with reason `does_not_fit` and a message naming its size and the room.
    @Test func aContentThatCanNeverFitDisplacesNobodyAndIsDeadLetteredSayingWhy() throws {
        let pipeline = try Pipeline(goldKiB: 16 * 1024, environment: ["RELOCATOR_DEFER_RETRY_MS": "300"])
        defer { pipeline.tearDown() }
        try pipeline.addContents((1...6).map { ($0, "c-\($0).bin", "silver", Self.mebibyte) } + [(9, "huge.bin", "silver", 10 * Self.mebibyte)])
        try pipeline.cluster.startAPI()
        try pipeline.cluster.startCommitter(arguments: ["--rebalance-interval", "1s"])
        try pipeline.cluster.startWorker("w1", concurrency: 2)
        for cid in 1...6 { #expect(try pipeline.post(cid, 20_000 + cid).status == 200) }
        try pipeline.cluster.waitUntil("six residents on gold") { try (1...6).allSatisfy { try pipeline.level(of: $0) == "gold" } }
        try pipeline.check(pipeline.cluster.run(["levels", "set", "gold", "--high-water", "50"]), "levels set")
        let redis = RedisConnection(url: try TestEnvironment.redisURL())
        defer { redis.close() }
        try waitForRounds(2, pipeline, redis)

        #expect(try pipeline.post(9, 90_000).status == 200)
        var deadJob: [String: Any]?
        try pipeline.cluster.waitUntil("the huge content's job in the dead letters", timeout: .seconds(40)) {
            let dead = try HTTP.get(pipeline.cluster.apiPort!, "/v1/dead").json?["dead"] as? [[String: Any]] ?? []
            deadJob = dead.first { $0["cid"] as? Int == 9 }
            return deadJob != nil
        }
        #expect(deadJob?["reason"] as? String == "does_not_fit", "\(deadJob ?? [:])")
        #expect((deadJob?["last_error"] as? String)?.contains("a file of 10MiB cannot fit under gold's high watermark 50 % even on an empty disk (room 8MiB of 16MiB)") == true,
                "\(deadJob ?? [:])")
        // Rounds go by; nobody was displaced for it, and it stays where it is.
        try waitForRounds(3, pipeline, redis)
        let relocations = try pipeline.relocations()
        #expect(relocations.allSatisfy { $0.from != "gold" }, "\(relocations.map { "\($0.cid): \($0.from)→\($0.to)" })")
        #expect(onGold(pipeline, 1...6) == Array(1...6))
        #expect(pipeline.whereIs("huge.bin") == ["silver"])
        let why = try pipeline.cluster.run(["why", "9"])
        #expect(why.stdout.contains("dead") && why.stdout.contains("cannot fit under gold's high watermark 50 %"), "\(why.stdout)")
        let status = try pipeline.cluster.run(["status", "--json"])
        #expect(status.stdout.contains("\"dead\" : 1") || status.stdout.contains("\"dead\":1"), "\(status.stdout)")
    }

    /// A content is counted 15,000 (it moves to gold), then 90,000 while the API still has it cached
    /// on silver: its score on gold is 90,000, `why` says so, and a watermark round sheds the
    /// colder residents, not it.
    @Test func theLatestCountWinsOverTheContentCache() throws {
        let pipeline = try Pipeline(goldKiB: 64 * 1024)
        defer { pipeline.tearDown() }
        try pipeline.addContents((1...4).map { ($0, "c-\($0).bin", "silver", Self.mebibyte) } + [(9, "c-9.bin", "silver", Self.mebibyte)])
        try pipeline.cluster.startAPI()
        try pipeline.cluster.startCommitter(arguments: ["--rebalance-interval", "1s"])
        try pipeline.cluster.startWorker("w1", concurrency: 2)
        for cid in 1...4 { #expect(try pipeline.post(cid, 30_000 + 10_000 * cid).status == 200) }
        #expect(try pipeline.post(9, 15_000).status == 200)
        try pipeline.cluster.waitUntil("five residents on gold") { try [1, 2, 3, 4, 9].allSatisfy { try pipeline.level(of: $0) == "gold" } }
        // Within the API's 30 s content cache, which read cid 9 on silver.
        let answer = try pipeline.post(9, 90_000)
        #expect(answer.status == 200 && answer.json?["status"] as? String == "in_place", "\(answer.body)")
        let why = try pipeline.cluster.run(["why", "9", "--json"])
        let report = try JSONSerialization.jsonObject(with: Data(why.stdout.utf8)) as? [String: Any]
        #expect(report?["last_count"] as? Int == 90_000, "\(why.stdout)")
        let redis = RedisConnection(url: try TestEnvironment.redisURL())
        defer { redis.close() }
        let keys = try KeySchema(prefix: pipeline.cluster.prefix)
        #expect(try redis.send("ZSCORE", keys.shard(of: 9).residents("gold"), 9).string.flatMap(Double.init) == 90_000)

        // Gold gets a watermark that makes one or two contents go: the coldest, never cid 9.
        let percent = try goldPercent(pipeline)
        let high = Int(percent.rounded(.down)) - 1
        try pipeline.check(pipeline.cluster.run(["levels", "set", "gold", "--high-water", String(high)]), "levels set")
        try pipeline.cluster.waitUntil("a resident shed", timeout: .seconds(30)) { try pipeline.relocations().contains { $0.from == "gold" } }
        let shed = try pipeline.relocations().filter { $0.from == "gold" }.map(\.cid)
        #expect(!shed.contains(9) && shed.contains(1), "shed \(shed)")
        #expect(pipeline.whereIs("c-9.bin") == ["gold"])
    }
}
