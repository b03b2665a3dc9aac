import Foundation
import RedisClient
import RelocatorCore
import SQLStore
import Testing
import TestSupport

/// The built binary as separate processes, real Redis, real SQL, real files on two filesystems.
@Suite(.serialized) struct PipelineTests {
    /// The level a count falls in with the default levels.
    func target(for count: Int) -> String { count >= 10000 ? "gold" : count >= 1000 ? "silver" : "bronze" }

    @Test func twoHundredContentsEndInTheirTargetWithUnchangedBytes() throws {
        let pipeline = try Pipeline(database: .postgres)
        defer { pipeline.tearDown() }
        let levels = ["bronze", "silver", "gold"]
        let counts = [500, 5000, 50000, 200_000]
        var rows: [(cid: Int, filename: String, level: String, bytes: Int?)] = []
        for cid in 1...200 {
            let bytes = cid % 10 == 0 ? 3_000_000 + cid : Int.random(in: 0...200_000)
            rows.append((cid, "content-\(cid).bin", levels[cid % 3], bytes))
        }
        let sums = try pipeline.addContents(rows)
        let port = try pipeline.cluster.startAPI()
        try pipeline.cluster.startWorker("w1", concurrency: 2)
        try pipeline.cluster.startWorker("w2", concurrency: 2)
        try pipeline.cluster.startCommitter()

        var expectedMoves = 0
        for row in rows {
            let count = counts[row.cid % 4]
            let response = try HTTP.postForm(port, "/post_sentence", [("cid", String(row.cid)), ("count", String(count))])
            #expect(response.status == 200, "\(response.body)")
            if target(for: count) != row.level { expectedMoves += 1 }
        }
        try pipeline.cluster.waitUntil("every move committed", timeout: .seconds(120)) {
            try pipeline.cluster.isIdle() && pipeline.relocations().count == expectedMoves
        }

        let db = try pipeline.open()
        defer { db.close() }
        let store = ContentStore(database: db)
        for row in rows {
            let wanted = target(for: counts[row.cid % 4])
            #expect(pipeline.whereIs(row.filename) == [wanted], "cid \(row.cid)")
            #expect(try TestFiles.sha256(pipeline.directories[wanted]! + "/" + row.filename) == sums[row.cid], "cid \(row.cid)")
            #expect(try store.content(cid: Int64(row.cid))?.level == wanted, "cid \(row.cid)")
        }
        let relocations = try pipeline.relocations()
        #expect(relocations.count == expectedMoves)
        #expect(Set(relocations.map(\.cid)).count == expectedMoves)
        for relocation in relocations {
            let path = pipeline.directories[relocation.to]! + "/" + rows.first { $0.cid == Int(relocation.cid) }!.filename
            let recorded = try TestFiles.recordedChecksum(path)
            #expect(relocation.checksum == recorded && relocation.from != relocation.to)
        }
        #expect(relocations.contains { $0.to == "gold" && $0.from != "gold" }, "some moves crossed filesystems")
        // The original rule: a count above the top level raised its max_counts.
        #expect(try LevelStore(database: db).levels().first { $0.name == "gold" }?.maxCounts == 200_000)
        #expect(TestFiles.partFiles(under: pipeline.root.path).isEmpty && TestFiles.partFiles(under: pipeline.gold.path).isEmpty)
    }

    @Test func twoCountsInQuickSuccessionGiveOneMoveToTheLatestTarget() throws {
        let pipeline = try Pipeline()
        defer { pipeline.tearDown() }
        let sums = try pipeline.addContents([(1, "c.mkv", "bronze", 50_000)])
        try pipeline.cluster.startAPI()
        #expect(try pipeline.post(1, 50000).json?["target"] as? String == "gold")
        #expect(try pipeline.post(1, 5000).json?["target"] as? String == "silver")
        try pipeline.cluster.startWorker("w1")
        try pipeline.cluster.startCommitter()
        try pipeline.cluster.waitUntil("the commit") { try pipeline.job(1)?["status"] as? String == "committed" }
        #expect(pipeline.whereIs("c.mkv") == ["silver"])
        #expect(try TestFiles.sha256(pipeline.directories["silver"]! + "/c.mkv") == sums[1])
        let moves = try pipeline.relocations()
        #expect(moves.count == 1 && moves[0].from == "bronze" && moves[0].to == "silver")
        #expect(try pipeline.level(of: 1) == "silver")
    }

    @Test func aMoveIntoAReadOnlyDiskRetriesWithGrowingDelaysUntilItIsWritable() throws {
        let pipeline = try Pipeline(goldReadOnly: true, environment: [
            "RELOCATOR_RETRY_BASE_MS": "500", "RELOCATOR_MAX_ATTEMPTS": "20", "RELOCATOR_HEARTBEAT_TTL_MS": "600",
        ])
        defer { pipeline.tearDown() }
        let sums = try pipeline.addContents([(1, "hot.mp4", "bronze", 70_000)])
        try pipeline.cluster.startAPI()
        try pipeline.cluster.startWorker("w1", concurrency: 1)
        try pipeline.cluster.startCommitter()
        #expect(try pipeline.post(1, 50000).status == 200)

        // When each failed attempt was recorded.
        var seen: [Int: ContinuousClock.Instant] = [:]
        try pipeline.cluster.waitUntil("four failed attempts", timeout: .seconds(30)) {
            if let attempts = try pipeline.job(1)?["attempts"] as? Int, seen[attempts] == nil {
                seen[attempts] = .now
            }
            return seen[4] != nil
        }
        let job = try #require(try pipeline.job(1))
        #expect(job["status"] as? String == "retrying" || job["status"] as? String == "queued" || job["status"] as? String == "moving")
        #expect((job["last_error"] as? String)?.contains("EROFS") == true)
        let first = try #require(seen[2]) - (try #require(seen[1]))
        let third = try #require(seen[4]) - (try #require(seen[3]))
        // Delays are drawn from [250, 500] ms, then [500, 1000], then [1000, 2000].
        #expect(third > first, "gap after the first failure \(first), after the third \(third)")
        #expect(first >= .milliseconds(240))
        #expect(pipeline.whereIs("hot.mp4") == ["bronze"])

        try pipeline.gold.remount(readOnly: false)
        try pipeline.cluster.waitUntil("the commit", timeout: .seconds(30)) { try pipeline.job(1)?["status"] as? String == "committed" }
        #expect(pipeline.whereIs("hot.mp4") == ["gold"])
        #expect(try TestFiles.sha256(pipeline.gold.path + "/hot.mp4") == sums[1])
        #expect(try pipeline.relocations().first?.attempts ?? 0 >= 4)
    }

    @Test func aPermanentFailureIsDeadUntilReplayedAfterTheCauseIsFixed() throws {
        let pipeline = try Pipeline()
        defer { pipeline.tearDown() }
        try pipeline.addContents([(2, "missing.mp4", "bronze", nil)])
        try pipeline.cluster.startAPI()
        try pipeline.cluster.startWorker("w1")
        try pipeline.cluster.startCommitter()
        #expect(try pipeline.post(2, 5000).status == 200)
        try pipeline.cluster.waitUntil("the dead letter") { try pipeline.job(2)?["status"] as? String == "dead" }
        #expect(try pipeline.job(2)?["attempts"] as? Int == 1)

        let listed = try pipeline.cluster.run(["dlq", "list"])
        #expect(listed.status == 0 && listed.stdout.contains("missing.mp4") && listed.stdout.contains("bronze → silver")
            && listed.stdout.contains("source_missing"), "\(listed.stdout)")
        let dry = try pipeline.cluster.run(["dlq", "replay", "--cid", "2", "--dry-run"])
        #expect(dry.status == 0 && dry.stdout.contains("would replay 2:"))
        #expect(try pipeline.job(2)?["status"] as? String == "dead")
        let unknown = try pipeline.cluster.run(["dlq", "replay", "--cid", "77"])
        #expect(unknown.status != 0 && unknown.stderr.contains("no dead job for cid 77"))

        // The operator puts the file back and replays.
        let sum = try TestFiles.make(pipeline.directories["bronze"]! + "/missing.mp4", bytes: 12_345)
        let replayed = try pipeline.cluster.run(["dlq", "replay", "--cid", "2"])
        #expect(replayed.status == 0 && replayed.stdout.contains("replayed 2:"))
        try pipeline.cluster.waitUntil("the commit") { try pipeline.job(2)?["status"] as? String == "committed" }
        #expect(try TestFiles.sha256(pipeline.directories["silver"]! + "/missing.mp4") == sum)
        #expect(try pipeline.cluster.run(["dlq", "list"]).stdout.contains("empty"))
    }

    @Test func aWorkerKilledMidCopyIsReplacedAndTheMoveFinishesWithoutCountingAnAttempt() throws {
        let pipeline = try Pipeline(goldKiB: 1024 * 1024)
        defer { pipeline.tearDown() }
        try pipeline.addContents([(1, "big.bin", "bronze", nil)])
        let sum = try TestFiles.makeLarge(pipeline.directories["bronze"]! + "/big.bin", mebibytes: 400)
        try pipeline.cluster.startAPI()
        try pipeline.cluster.startCommitter()
        let doomed = try pipeline.cluster.startWorker("doomed", concurrency: 1)
        #expect(try pipeline.post(1, 50000).status == 200)
        // Kill it while the temporary file is being written.
        try pipeline.cluster.waitUntil("the copy to start", timeout: .seconds(30)) {
            !TestFiles.partFiles(under: pipeline.gold.path).isEmpty
        }
        doomed.crash()
        #expect(pipeline.whereIs("big.bin") == ["bronze"])
        #expect(try pipeline.job(1)?["status"] as? String == "moving")

        try pipeline.cluster.startWorker("rescuer", concurrency: 1)
        try pipeline.cluster.waitUntil("the commit", timeout: .seconds(60)) { try pipeline.job(1)?["status"] as? String == "committed" }
        let job = try #require(try pipeline.job(1))
        #expect(job["attempts"] as? Int == 0)
        #expect(job["worker_id"] as? String == "rescuer")
        #expect(pipeline.whereIs("big.bin") == ["gold"])
        #expect(TestFiles.partFiles(under: pipeline.gold.path).isEmpty)
        #expect(try TestFiles.sha256(pipeline.gold.path + "/big.bin") == sum)
    }

    @Test func theCommitterWaitsOutADatabaseOutageAndCommitsEveryJobOnce() throws {
        let server = try PostgresServer()
        let pipeline = try Pipeline(databaseURL: server.url)
        defer { pipeline.tearDown() }
        let rows = (1...20).map { (cid: $0, filename: "f\($0).bin", level: "bronze", bytes: Optional(1000 + $0)) }
        let sums = try pipeline.addContents(rows)
        try pipeline.cluster.startAPI()
        try pipeline.cluster.startWorker("w1")
        for row in rows { #expect(try pipeline.post(row.cid, 5000).status == 200) }
        let redis = RedisConnection(url: try TestEnvironment.redisURL())
        let keys = try KeySchema(prefix: pipeline.cluster.prefix).shard(0)
        try pipeline.cluster.waitUntil("every move") { try redis.send("LLEN", keys.done).int == 20 }

        server.stop()
        try pipeline.cluster.startCommitter("committer")
        try pipeline.cluster.waitUntil("the committer to hold the batch") { try redis.send("LLEN", keys.committing("committer")).int == 20 }
        // It keeps waiting: nothing is lost, nothing marked committed.
        try pipeline.cluster.waitUntil("a failed write to be logged") { pipeline.cluster.log("committer").contains("the database is unreachable") }
        #expect(try redis.send("LLEN", keys.committing("committer")).int == 20)
        #expect(try rows.allSatisfy { try redis.send("HGET", keys.job(Int64($0.cid)), "status").string == "done" })

        try server.start()
        try pipeline.cluster.waitUntil("the commit", timeout: .seconds(60)) {
            try rows.allSatisfy { try redis.send("HGET", keys.job(Int64($0.cid)), "status").string == "committed" }
        }
        let relocations = try pipeline.relocations()
        #expect(relocations.count == 20)
        #expect(Set(relocations.map(\.jobID)).count == 20)
        for row in rows {
            #expect(try pipeline.level(of: row.cid) == "silver")
            #expect(try TestFiles.sha256(pipeline.directories["silver"]! + "/" + row.filename) == sums[row.cid])
        }
    }

    @Test func sigtermLetsTheMoveInFlightFinish() throws {
        let pipeline = try Pipeline(goldKiB: 1024 * 1024)
        defer { pipeline.tearDown() }
        try pipeline.addContents([(1, "big.bin", "bronze", nil)])
        let sum = try TestFiles.makeLarge(pipeline.directories["bronze"]! + "/big.bin", mebibytes: 300)
        try pipeline.cluster.startAPI()
        let worker = try pipeline.cluster.startWorker("w1", concurrency: 1)
        #expect(try pipeline.post(1, 50000).status == 200)
        try pipeline.cluster.waitUntil("the copy to start", timeout: .seconds(30)) {
            !TestFiles.partFiles(under: pipeline.gold.path).isEmpty
        }
        worker.signal(SIGTERM)
        #expect(worker.wait(timeout: .seconds(30)) == 0, "\(pipeline.cluster.log("w1"))")
        #expect(try pipeline.job(1)?["status"] as? String == "done")
        #expect(pipeline.whereIs("big.bin") == ["gold"])
        #expect(try TestFiles.sha256(pipeline.gold.path + "/big.bin") == sum)
    }
}
