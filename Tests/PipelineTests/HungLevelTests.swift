import Foundation
import Testing
import TestSupport

/// A level whose filesystem stops answering under a running worker (a hard NFS mount whose server
/// is gone, a stalled device; here a FUSE passthrough whose daemon is stopped): the worker's
/// heartbeat goes on — it is not taken for dead, its jobs are not given to others — the level is
/// out of service ("not answering") while the worker goes on with its other levels, and once the
/// filesystem answers again the level is back and its moves are done.
@Suite(.serialized) struct HungLevelTests {
    @Test func aLevelThatStopsAnsweringIsOutOfServiceWhileTheWorkerGoesOnWithTheOthers() throws {
        try #require(FuseLevel.missing == nil, "\(FuseLevel.missing ?? "")")
        let root = try TemporaryDirectory("relocator-hung")
        defer { root.remove() }
        for directory in ["gold-disk", "bronze", "silver"] {
            try FileManager.default.createDirectory(atPath: root.path + "/" + directory, withIntermediateDirectories: true)
        }
        let gold = try FuseLevel(serving: root.path + "/gold-disk")
        defer { gold.remove() }
        let cluster = try Cluster(redis: try TestEnvironment.value("RELOCATOR_TEST_REDIS_URL"), database: .sqlite(path: root.path + "/db.sqlite"),
                                  levels: [("gold", gold.path), ("silver", root.path + "/silver"), ("bronze", root.path + "/bronze")],
                                  environment: ["RELOCATOR_HEARTBEAT_TTL_MS": "600", "RELOCATOR_DEFER_RETRY_MS": "300"])
        // The level answers before the worker is stopped (a stop during a hang waits out its kill).
        defer { gold.answer(); cluster.stop() }
        for command in [["migrate"], ["levels", "--seed-default"]] {
            let result = try cluster.run(command)
            try #require(result.status == 0, "\(command): \(result.stderr)")
        }
        var sums: [Int: String] = [:]
        for cid in 1...3 {
            let result = try cluster.run(["contents", "add", "--cid", String(cid), "--filename", "c\(cid).bin", "--level", "bronze"])
            try #require(result.status == 0, "contents add: \(result.stderr)")
            sums[cid] = try TestFiles.make(root.path + "/bronze/c\(cid).bin", bytes: 300_000)
        }
        func post(_ cid: Int, _ count: Int) throws -> Int {
            try HTTP.postForm(cluster.apiPort!, "/post_sentence", [("cid", String(cid)), ("count", String(count))]).status
        }
        func status(_ cid: Int) throws -> String? {
            try HTTP.get(cluster.apiPort!, "/v1/jobs/\(cid)").json?["status"] as? String
        }
        try cluster.startAPI()
        try cluster.startCommitter()
        try cluster.startWorker("w1", concurrency: 2)
        #expect(try post(1, 50000) == 200)
        try cluster.waitUntil("a move into gold through its filesystem") { try status(1) == "committed" }

        gold.hang()
        try cluster.waitUntil("the worker takes gold out of service, its heartbeat going on") {
            try cluster.run(["status"]).stdout.contains("level gold out of service on w1")
        }
        #expect(cluster.log("w1").contains("has not answered a check within"))
        // The worker goes on with the other levels; a move into gold waits in its queue.
        #expect(try post(2, 50000) == 200)
        #expect(try post(3, 5000) == 200)
        try cluster.waitUntil("a move into silver while gold hangs") { try status(3) == "committed" }
        // Taken by a slot already waiting for a job, it is put off without an attempt, not moved
        // into the level that does not answer.
        let waiting = try HTTP.get(cluster.apiPort!, "/v1/jobs/2").json
        #expect(["queued", "deferred"].contains(waiting?["status"] as? String), "\(String(describing: waiting))")
        #expect(waiting?["attempts"] as? Int == 0)

        gold.answer()
        try cluster.waitUntil("gold back in service and its move done") { try status(2) == "committed" }
        try cluster.waitUntil("the worker says gold is back") { cluster.log("w1").contains("level 'gold' is back in service") }
        #expect(try TestFiles.sha256(root.path + "/gold-disk/c1.bin") == sums[1])
        #expect(try TestFiles.sha256(root.path + "/gold-disk/c2.bin") == sums[2])
        #expect(try TestFiles.sha256(root.path + "/silver/c3.bin") == sums[3])
    }
}
