import Foundation
import RedisClient
import RelocatorCore
import SQLStore
import Testing
import TestSupport

@Suite(.serialized) struct ReconcileTests {
    @Test func reconcileReportsThenRepairsWhatIsSafe() throws {
        let pipeline = try Pipeline()
        defer { pipeline.tearDown() }
        let bronze = pipeline.directories["bronze"]!, silver = pipeline.directories["silver"]!, gold = pipeline.directories["gold"]!
        let sums = try pipeline.addContents([
            (1, "wrong.bin", "bronze", nil), (2, "dup.bin", "bronze", 5000), (3, "conflict.bin", "silver", nil),
            (4, "gone.bin", "bronze", nil), (6, "orphan.bin", "bronze", 3000), (7, "fine.bin", "gold", 100),
        ])
        let wrongSum = try TestFiles.make(silver + "/wrong.bin", bytes: 2000)          // on silver, database says bronze
        try FileManager.default.copyItem(atPath: bronze + "/dup.bin", toPath: gold + "/dup.bin")
        let conflictA = try TestFiles.make(bronze + "/conflict.bin", bytes: 100)
        let conflictB = try TestFiles.make(gold + "/conflict.bin", bytes: 100)
        // A temporary file of a delivery that stopped, left long enough ago to be stale, and a file
        // under an earlier version's temporary name that no content names.
        try TestFiles.make(gold + "/.relocator/tmp/5-123.part", bytes: 10, mtime: Date(timeIntervalSinceNow: -7200))
        try TestFiles.make(gold + "/.stale.bin.relocator-5-124.part", bytes: 10, mtime: Date(timeIntervalSinceNow: -7200))

        // A job moved and acked, whose `done` entry Redis then lost.
        try pipeline.cluster.startAPI()
        try pipeline.cluster.startWorker("w1")
        #expect(try pipeline.post(6, 5000).status == 200)
        try pipeline.cluster.waitUntil("the move") { try pipeline.job(6)?["status"] as? String == "done" }
        let redis = RedisConnection(url: try TestEnvironment.redisURL())
        let keys = try KeySchema(prefix: pipeline.cluster.prefix).shard(0)
        #expect(try redis.send("DEL", keys.done).int == 1)

        let report = try pipeline.cluster.run(["reconcile"])
        #expect(report.status == 2, "\(report.stderr)")
        for line in ["wrong_level cid=1: the database says bronze, wrong.bin is on silver", "duplicate cid=2:", "conflict cid=3:",
                     "missing cid=4:", "stale_part cid=5:", "legacy_part cid=5:", "orphaned_job cid=6: job 6:"] {
            #expect(report.stdout.contains(line), "\(line)\n\(report.stdout)")
        }
        #expect(!report.stdout.contains("cid=7"))
        #expect(report.stdout.contains("7 findings, 0 fixed, 7 need attention"), "\(report.stdout)")
        // A report changes nothing.
        #expect(try pipeline.level(of: 1) == "bronze")
        #expect(TestFiles.exists(gold + "/dup.bin") && TestFiles.exists(gold + "/.relocator/tmp/5-123.part"))
        #expect(TestFiles.exists(gold + "/.stale.bin.relocator-5-124.part"))

        let fixed = try pipeline.cluster.run(["reconcile", "--fix"])
        #expect(fixed.status == 2)
        #expect(fixed.stdout.contains("7 findings, 5 fixed, 2 need attention"), "\(fixed.stdout)")
        #expect(try pipeline.level(of: 1) == "silver")
        #expect(try TestFiles.sha256(silver + "/wrong.bin") == wrongSum)
        #expect(pipeline.whereIs("dup.bin") == ["bronze"])
        #expect(try TestFiles.sha256(bronze + "/dup.bin") == sums[2])
        #expect(try TestFiles.sha256(bronze + "/conflict.bin") == conflictA)
        #expect(try TestFiles.sha256(gold + "/conflict.bin") == conflictB)
        #expect(!TestFiles.exists(gold + "/.relocator/tmp/5-123.part"))
        // Moved aside, not deleted: a content could have had that name.
        #expect(!TestFiles.exists(gold + "/.stale.bin.relocator-5-124.part"))
        #expect(TestFiles.exists(gold + "/.relocator/orphans/.stale.bin.relocator-5-124.part"))
        // The orphan is back in `done`: a committer now records it.
        try pipeline.cluster.startCommitter()
        try pipeline.cluster.waitUntil("the commit") { try pipeline.job(6)?["status"] as? String == "committed" }
        #expect(try pipeline.level(of: 6) == "silver")

        let after = try pipeline.cluster.run(["reconcile"])
        #expect(after.stdout.contains("2 findings, 0 fixed, 2 need attention"), "\(after.stdout)")
    }

    /// reconcile --fix from cron while a worker is between publishing a copy and removing its source:
    /// the content has a move in flight, so both copies stay; the move then leaves one.
    @Test func reconcileBetweenPublishAndSourceRemovalLeavesBothCopiesToTheMove() throws {
        let pipeline = try Pipeline()
        defer { pipeline.tearDown() }
        let sums = try pipeline.addContents([(1, "film.mkv", "bronze", 2_000_000)])
        try pipeline.cluster.startAPI()
        try pipeline.cluster.startCommitter()
        try pipeline.cluster.startWorker("slow", concurrency: 1, environment: ["RELOCATOR_FAULTS": "pause-after=targetDirectorySynced:4000"])
        #expect(try pipeline.post(1, 50000).status == 200)
        try pipeline.cluster.waitUntil("the copy is published") { pipeline.whereIs("film.mkv") == ["bronze", "gold"] }
        let fix = try pipeline.cluster.run(["reconcile", "--fix"])
        #expect(fix.status == 0, "\(fix.stdout)\(fix.stderr)")
        #expect(fix.stdout.contains("1 contents with a job in flight left alone"), "\(fix.stdout)")
        #expect(pipeline.whereIs("film.mkv") == ["bronze", "gold"])
        try pipeline.cluster.waitUntil("the commit") { try pipeline.job(1)?["status"] as? String == "committed" }
        #expect(pipeline.whereIs("film.mkv") == ["gold"])
        #expect(try TestFiles.sha256(pipeline.gold.path + "/film.mkv") == sums[1])
    }

    /// Two contents may not name one file: reconcile reports a site that has them, migrate refuses
    /// to add the unique index while they exist (listing them), and once fixed, adding a taken
    /// filename is refused.
    @Test func twoContentsNamingOneFileAreReportedRefusedByMigrateAndThenImpossible() throws {
        let root = try TemporaryDirectory("relocator-unique")
        defer { root.remove() }
        let early = root.path + "/migrations/sqlite"
        try FileManager.default.createDirectory(atPath: early, withIntermediateDirectories: true)
        let source = TestEnvironment.packageRoot.appendingPathComponent("Sources/SQLStore/Migrations/sqlite")
        for file in try FileManager.default.contentsOfDirectory(atPath: source.path) where file.hasPrefix("0001") || file.hasPrefix("0002") {
            try FileManager.default.copyItem(atPath: source.path + "/" + file, toPath: early + "/" + file)
        }
        let levels = ["gold", "silver", "bronze"].map { ($0, root.path + "/" + $0) }
        for (_, path) in levels { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
        let database = DatabaseURL.sqlite(path: root.path + "/site.sqlite")
        let cluster = try Cluster(redis: try TestEnvironment.value("RELOCATOR_TEST_REDIS_URL"), database: database, levels: levels)
        defer { cluster.stop() }
        #expect(try cluster.run(["migrate", "--migrations", root.path + "/migrations"]).status == 0)
        // A site of the original system: two rows name one file.
        let db = try openDatabase(database, access: .readWrite)
        try db.execute("INSERT INTO contents (cid, filename, content_level) VALUES (\(Int64(1)), \("same.mp4"), \("bronze")), (\(Int64(2)), \("same.mp4"), \("bronze"))")
        db.close()
        try TestFiles.make(root.path + "/bronze/same.mp4", bytes: 100)
        let report = try cluster.run(["reconcile"])
        #expect(report.stdout.contains("shared_filename cid=1: cids 1, 2 all name same.mp4"), "\(report.stdout)")

        let refused = try cluster.run(["migrate"])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("same.mp4") && refused.stderr.contains("1") && refused.stderr.contains("2"), "\(refused.stderr)")
        let fix = try openDatabase(database, access: .readWrite)
        try fix.execute("DELETE FROM contents WHERE cid = \(Int64(2))")
        fix.close()
        #expect(try cluster.run(["migrate"]).status == 0)
        #expect(try cluster.run(["levels", "show", "--seed-default"]).status == 0)
        let duplicate = try cluster.run(["contents", "add", "--cid", "3", "--filename", "same.mp4", "--level", "bronze"])
        #expect(duplicate.status != 0 && duplicate.stderr.contains("already belongs to cid 1"), "\(duplicate.stderr)")
    }
}
