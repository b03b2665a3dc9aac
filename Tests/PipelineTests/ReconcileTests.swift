import Foundation
import RedisClient
import RelocatorCore
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
        // A temporary file of a job that is gone, left long enough ago to be stale.
        try TestFiles.make(gold + "/.stale.bin.relocator-5-123.part", bytes: 10, mtime: Date(timeIntervalSinceNow: -7200))

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
                     "missing cid=4:", "stale_part cid=5:", "orphaned_job cid=6: job 6:"] {
            #expect(report.stdout.contains(line), "\(line)\n\(report.stdout)")
        }
        #expect(!report.stdout.contains("cid=7"))
        #expect(report.stdout.contains("6 findings, 0 fixed, 6 need attention"))
        // A report changes nothing.
        #expect(try pipeline.level(of: 1) == "bronze")
        #expect(TestFiles.exists(gold + "/dup.bin") && TestFiles.exists(gold + "/.stale.bin.relocator-5-123.part"))

        let fixed = try pipeline.cluster.run(["reconcile", "--fix"])
        #expect(fixed.status == 2)
        #expect(fixed.stdout.contains("6 findings, 4 fixed, 2 need attention"), "\(fixed.stdout)")
        #expect(try pipeline.level(of: 1) == "silver")
        #expect(try TestFiles.sha256(silver + "/wrong.bin") == wrongSum)
        #expect(pipeline.whereIs("dup.bin") == ["bronze"])
        #expect(try TestFiles.sha256(bronze + "/dup.bin") == sums[2])
        #expect(try TestFiles.sha256(bronze + "/conflict.bin") == conflictA)
        #expect(try TestFiles.sha256(gold + "/conflict.bin") == conflictB)
        #expect(!TestFiles.exists(gold + "/.stale.bin.relocator-5-123.part"))
        // The orphan is back in `done`: a committer now records it.
        try pipeline.cluster.startCommitter()
        try pipeline.cluster.waitUntil("the commit") { try pipeline.job(6)?["status"] as? String == "committed" }
        #expect(try pipeline.level(of: 6) == "silver")

        let after = try pipeline.cluster.run(["reconcile"])
        #expect(after.stdout.contains("2 findings, 0 fixed, 2 need attention"), "\(after.stdout)")
    }
}
