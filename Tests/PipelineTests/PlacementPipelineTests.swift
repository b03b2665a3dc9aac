import Foundation
import RedisClient
import RelocatorCore
import SQLStore
import Testing
import TestSupport

/// Placement with the built binary: a level policy set with `relocator levels set`, the committer's
/// rebalancer, workers admitting moves against a real tmpfs's free space.
@Suite(.serialized) struct PlacementPipelineTests {
    static let mebibyte = 1 << 20

    /// Percent of the gold tmpfs in use, from statvfs as the workers see it.
    func goldPercent(_ pipeline: Pipeline) throws -> Double {
        var stats = statvfs()
        guard statvfs(pipeline.gold.path, &stats) == 0 else { throw POSIXError(.EIO) }
        let size = Double(stats.f_blocks) * Double(stats.f_frsize)
        return (size - Double(stats.f_bfree) * Double(stats.f_frsize)) * 100 / size
    }

    /// Waits until the rebalancer has published the level policies containing `needle`, then for
    /// two of the workers' heartbeats (every 0.5 s here), with which they read them.
    func waitForPublishedPolicies(_ pipeline: Pipeline, containing needle: String) throws {
        let redis = RedisConnection(url: try TestEnvironment.redisURL())
        defer { redis.close() }
        let key = try KeySchema(prefix: pipeline.cluster.prefix).control.placement
        try pipeline.cluster.waitUntil("the published policies", timeout: .seconds(30)) {
            try redis.send("GET", key).string?.contains(needle) == true
        }
        Thread.sleep(forTimeInterval: 1.5)
    }

    func jobs(_ pipeline: Pipeline, _ cids: ClosedRange<Int>) throws -> [Int: [String: Any]] {
        var jobs: [Int: [String: Any]] = [:]
        for cid in cids {
            let response = try HTTP.get(pipeline.cluster.apiPort!, "/v1/jobs/\(cid)")
            if response.status == 200, let json = response.json { jobs[cid] = json }
        }
        return jobs
    }

    /// Twelve 1 MiB contents whose counts all say gold, on an 8 MiB gold disk with a 60 % high and a
    /// 40 % low watermark: nothing dies of ENOSPC, the moves that find no room wait as `deferred`
    /// with their reason, gold stays under its high watermark, and the hottest contents end on gold
    /// (a hotter content waiting for room displaces a colder resident).
    @Test func aFullLevelDefersMovesAndKeepsItsHottestContents() throws {
        let pipeline = try Pipeline(goldKiB: 8 * 1024, environment: ["RELOCATOR_DEFER_RETRY_MS": "300", "RELOCATOR_HEARTBEAT_TTL_MS": "1500"])
        defer { pipeline.tearDown() }
        try pipeline.check(pipeline.cluster.run(["levels", "set", "gold", "--high-water", "60", "--low-water", "40"]), "levels set")
        let cids = 1...12
        try pipeline.addContents(cids.map { ($0, "hot-\($0).bin", "silver", Self.mebibyte) })
        try pipeline.cluster.startAPI()
        try pipeline.cluster.startCommitter(arguments: ["--rebalance-interval", "1s"])
        try pipeline.cluster.startWorker("w1", concurrency: 2)
        try pipeline.cluster.startWorker("w2", concurrency: 2)
        try waitForPublishedPolicies(pipeline, containing: "60")

        // Coldest first, so the first to arrive fill gold and the hotter ones must displace them.
        for cid in cids { #expect(try pipeline.post(cid, 10_000 + cid * 100).status == 200) }

        var sawDeferred = false
        var highest = 0.0
        var finished = false
        defer {
            // What a failed run saw: where the contents are, their jobs, the plan, the rebalancer's last moves.
            if !finished {
                let states = (try? jobs(pipeline, cids).map { "\($0.key):\($0.value["status"] ?? "-")" }.sorted()) ?? []
                let onGold = cids.filter { pipeline.whereIs("hot-\($0).bin") == ["gold"] }
                let plan = (try? pipeline.cluster.run(["plan"]).stdout) ?? ""
                print("DIAG gold=\(onGold) jobs=\(states) percent=\((try? goldPercent(pipeline)) ?? -1)\n\(plan)\n\(pipeline.cluster.log("committer").split(separator: "\n").filter { $0.contains("rebalanc") }.suffix(6).joined(separator: "\n"))")
            }
        }
        try pipeline.cluster.waitUntil("gold holds the hottest contents and nothing moves", timeout: .seconds(60)) {
            highest = max(highest, try goldPercent(pipeline))
            let jobs = try jobs(pipeline, cids)
            for job in jobs.values where job["status"] as? String == "deferred" {
                sawDeferred = true
                #expect((job["defer_reason"] as? String)?.contains("gold") == true, "\(job)")
            }
            let moving = jobs.values.filter { ["queued", "moving", "retrying", "done"].contains($0["status"] as? String ?? "") }
            let onGold = cids.filter { pipeline.whereIs("hot-\($0).bin") == ["gold"] }
            // (A displacement empties room before the hotter content arrives: gold may hold one
            // content for a moment while the others wait for their retry.)
            guard moving.isEmpty, onGold.count >= 2, try goldPercent(pipeline) <= 60 else { return false }
            // The residents are the hottest ones: every content on gold is hotter than every one off it.
            return onGold.min()! > cids.filter { !onGold.contains($0) }.max() ?? 0
        }
        let onGold = cids.filter { pipeline.whereIs("hot-\($0).bin") == ["gold"] }
        #expect(onGold.count >= 2, "gold holds \(onGold)")
        #expect(sawDeferred, "some move waited for room")
        #expect(try goldPercent(pipeline) <= 60, "gold ends under its high watermark")
        // The workers reserve room for their copies in Redis: two of them cannot both take the last of it.
        #expect(highest <= 60, "gold never rose above its high watermark (peak \(highest) %)")
        let dead = try HTTP.get(pipeline.cluster.apiPort!, "/v1/dead").json?["dead"] as? [Any] ?? []
        #expect(dead.isEmpty, "no job died: \(dead)")
        // Every file exists exactly once, and the database agrees with the disks, once no move is in
        // flight: a deferred job retried meanwhile may take room a displacement freed, and its file
        // is on gold a moment before its commit names gold (a loaded machine makes that moment long).
        try pipeline.cluster.waitUntil("every file in one place, the one the database names", timeout: .seconds(60)) {
            try cids.allSatisfy { cid in
                let places = pipeline.whereIs("hot-\(cid).bin")
                return try places.count == 1 && pipeline.level(of: cid) == places.first
            }
        }
        for cid in cids {
            let places = pipeline.whereIs("hot-\(cid).bin")
            #expect(places.count == 1, "cid \(cid) on \(places)")
            #expect(try pipeline.level(of: cid) == places.first, "cid \(cid)")
        }
        // The displaced residents were recorded as moves down from gold.
        #expect(try pipeline.relocations().contains { $0.from == "gold" && $0.to == "silver" }, "a colder resident was displaced")
        // `plan` lists the deferred jobs that remain, as pending moves to gold, and gold's watermarks.
        // A deferred job tries again every 300 ms, so between the plan and the read of the jobs it
        // may be queued or moving for a moment (and deferred again, gold being full), or, on a
        // loaded machine, still finishing a displacement: the two agree once the jobs are read
        // around a plan that saw none of them change.
        var plan: [String: Any] = [:], planned = ""
        try pipeline.cluster.waitUntil("the plan to list the jobs that wait for gold", timeout: .seconds(30)) {
            func waiting() throws -> Set<Int> {
                Set(try jobs(pipeline, cids).filter { ["deferred", "queued", "moving"].contains($0.value["status"] as? String ?? "") }.map(\.key))
            }
            let before = try waiting()
            let result = try pipeline.cluster.run(["plan", "--json", "--details"])
            guard result.status == 0 else { throw ClusterError("plan: \(result.stderr)") }
            planned = result.stdout
            plan = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] ?? [:]
            let pending = Set(((plan["moves"] as? [[String: Any]]) ?? []).filter { $0["kind"] as? String == "pending" && $0["to"] as? String == "gold" }
                .compactMap { $0["cid"] as? Int })
            let after = try waiting()
            return pending == before && pending == after
        }
        #expect(!planned.isEmpty)
        let gold = ((plan["levels"] as? [[String: Any]]) ?? []).first { $0["level"] as? String == "gold" }
        #expect(gold?["high_water"] as? Int == 60 && gold?["low_water"] as? Int == 40, "\(String(describing: gold))")
        finished = true
    }

    /// Silver with a 20 % hysteresis and a one-hour minimum residency: a count that wobbles just
    /// under silver's minimum moves nothing, one far under it waits as `deferred` for the residency
    /// window, and a count back up cancels the wait — one move in all.
    @Test func wobblingCountsMoveAContentOncePerResidencyWindow() throws {
        let pipeline = try Pipeline(environment: ["RELOCATOR_HEARTBEAT_TTL_MS": "1500"])
        defer { pipeline.tearDown() }
        try pipeline.check(pipeline.cluster.run(["levels", "set", "silver", "--hysteresis", "20", "--min-residency", "1h"]), "levels set")
        try pipeline.addContents([(1, "wobbly.bin", "bronze", 4096)])
        try pipeline.cluster.startAPI()
        try pipeline.cluster.startCommitter(arguments: ["--rebalance-interval", "1s"])
        try pipeline.cluster.startWorker("w1", concurrency: 2)

        #expect(try pipeline.post(1, 1500).status == 200)
        try pipeline.cluster.waitUntil("the move to silver committed") { try pipeline.level(of: 1) == "silver" }
        for count in [950, 990, 820] {
            #expect(try pipeline.post(1, count).status == 200)
        }
        Thread.sleep(forTimeInterval: 2)
        #expect(try pipeline.level(of: 1) == "silver", "inside the hysteresis band nothing moves")
        #expect(try pipeline.relocations().count == 1)
        // Nothing waits either: without the hysteresis these counts would make a deferred demotion.
        let after = try HTTP.get(pipeline.cluster.apiPort!, "/v1/jobs/1")
        #expect(after.status == 404 || after.json?["status"] as? String == "committed", "no job waits: \(after.body)")

        #expect(try pipeline.post(1, 300).status == 200)
        try pipeline.cluster.waitUntil("the demotion waits for the residency window") {
            let job = try HTTP.get(pipeline.cluster.apiPort!, "/v1/jobs/1").json
            return job?["status"] as? String == "deferred"
        }
        let job = try HTTP.get(pipeline.cluster.apiPort!, "/v1/jobs/1").json ?? [:]
        #expect((job["defer_reason"] as? String)?.contains("keeps contents at least") == true, "\(job)")
        let why = try pipeline.cluster.run(["why", "1"])
        #expect(why.stdout.contains("deferred"), "\(why.stdout)")

        #expect(try pipeline.post(1, 5000).status == 200)
        // The count back up ends the wait: the content stays.
        try pipeline.cluster.waitUntil("the deferred demotion to end") {
            try HTTP.get(pipeline.cluster.apiPort!, "/v1/jobs/1").json?["status"] as? String != "deferred"
        }
        Thread.sleep(forTimeInterval: 2)
        #expect(try pipeline.level(of: 1) == "silver")
        #expect(pipeline.whereIs("wobbly.bin") == ["silver"])
        #expect(try pipeline.relocations().count == 1, "one move in all")
    }

    /// Hits with a 2 s half-life: 2,000 hits take a content from bronze to silver; as the counter
    /// decays below silver's minimum, the rebalancer takes it back down — and `enqueue --hits` adds
    /// to the same counter.
    @Test func hitsMoveAContentUpAndTheDecayTakesItBackDown() throws {
        let pipeline = try Pipeline(environment: ["RELOCATOR_HALF_LIFE": "2s", "RELOCATOR_HEARTBEAT_TTL_MS": "1500"])
        defer { pipeline.tearDown() }
        try pipeline.addContents([(1, "trending.bin", "bronze", 8192), (2, "other.bin", "bronze", 4096)])
        let port = try pipeline.cluster.startAPI()
        try pipeline.cluster.startCommitter(arguments: ["--rebalance-interval", "1s"])
        try pipeline.cluster.startWorker("w1", concurrency: 2)

        let response = try HTTP.postJSON(port, "/v1/contents/1/hits", #"{"n": 2000}"#)
        #expect(response.status == 202, "\(response.body)")
        try pipeline.cluster.waitUntil("the hits' move up", timeout: .seconds(30)) {
            try pipeline.relocations().contains { $0.cid == 1 && $0.to == "silver" }
        }
        // Nothing posts again: the counter decays under 1,000 after one half-life, and the rebalancer moves it down.
        try pipeline.cluster.waitUntil("the decay's move down", timeout: .seconds(40)) {
            try pipeline.relocations().contains { $0.cid == 1 && $0.from == "silver" && $0.to == "bronze" }
        }
        #expect(try pipeline.level(of: 1) == "bronze")
        #expect(pipeline.whereIs("trending.bin") == ["bronze"])
        let moves = try pipeline.relocations().filter { $0.cid == 1 }.map { "\($0.from)→\($0.to)" }
        #expect(moves.sorted() == ["bronze→silver", "silver→bronze"], "one move up, one down")

        let added = try pipeline.cluster.run(["enqueue", "--cid", "2", "--hits", "30000"])
        #expect(added.status == 0 && added.stdout.contains("30000 hits added") && added.stdout.contains("gold"), "\(added.stdout)\(added.stderr)")
        try pipeline.cluster.waitUntil("the move up of cid 2", timeout: .seconds(30)) {
            try pipeline.relocations().contains { $0.cid == 2 && $0.to == "gold" }
        }
    }
}
