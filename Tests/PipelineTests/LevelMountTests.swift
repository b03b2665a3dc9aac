import Foundation
import Testing
import TestSupport

/// A level unmounted under a running worker (`umount -l`): the worker holds the directory it
/// checked at start, so nothing lands in the bare mountpoint — the level is out of service (a log
/// line, a `status` line) until the same directory is mounted back, and a move caught in flight
/// waits without counting an attempt.
@Suite(.serialized) struct LevelMountTests {
    final class Site {
        let root: TemporaryDirectory
        let gold: BindMount
        let cluster: Cluster
        var backing: String { root.path + "/gold-disk" }
        var bronze: String { root.path + "/bronze" }
        var silver: String { root.path + "/silver" }

        init() throws {
            root = try TemporaryDirectory("relocator-mount")
            for directory in ["gold-disk", "bronze", "silver"] {
                try FileManager.default.createDirectory(atPath: root.path + "/" + directory, withIntermediateDirectories: true)
            }
            gold = try BindMount(of: root.path + "/gold-disk")
            cluster = try Cluster(redis: try TestEnvironment.value("RELOCATOR_TEST_REDIS_URL"), database: .sqlite(path: root.path + "/db.sqlite"),
                                  levels: [("gold", gold.path), ("silver", root.path + "/silver"), ("bronze", root.path + "/bronze")],
                                  environment: ["RELOCATOR_HEARTBEAT_TTL_MS": "600"])
            for command in [["migrate"], ["levels", "--seed-default"]] {
                let result = try cluster.run(command)
                guard result.status == 0 else { throw ClusterError("\(command) failed: \(result.stderr)") }
            }
        }

        func tearDown() {
            cluster.stop()
            gold.remove()
            root.remove()
        }

        func add(_ cid: Int, _ name: String) throws -> String {
            let result = try cluster.run(["contents", "add", "--cid", String(cid), "--filename", name, "--level", "bronze"])
            guard result.status == 0 else { throw ClusterError("contents add failed: \(result.stderr)") }
            return try TestFiles.make(bronze + "/" + name, bytes: 500_000)
        }

        func post(_ cid: Int, _ count: Int) throws -> Int {
            try HTTP.postForm(cluster.apiPort!, "/post_sentence", [("cid", String(cid)), ("count", String(count))]).status
        }

        func status(_ cid: Int) throws -> String? {
            try HTTP.get(cluster.apiPort!, "/v1/jobs/\(cid)").json?["status"] as? String
        }
    }

    @Test func aLevelUnmountedUnderAWorkerIsOutOfServiceAndNothingLandsInTheBareMountpoint() throws {
        let site = try Site()
        defer { site.tearDown() }
        let sums = try [1: site.add(1, "a.bin"), 2: site.add(2, "b.bin"), 3: site.add(3, "c.bin")]
        try site.cluster.startAPI()
        try site.cluster.startCommitter()
        try site.cluster.startWorker("w1", concurrency: 1)
        #expect(try site.post(1, 50000) == 200)
        try site.cluster.waitUntil("the first move into gold") { try site.status(1) == "committed" }

        try site.gold.detach()
        try site.cluster.waitUntil("the worker takes gold out of service") {
            try site.cluster.run(["status"]).stdout.contains("level gold out of service on w1")
        }
        #expect(site.cluster.log("w1").contains("level 'gold' is out of service for this worker"))
        #expect(try site.post(2, 50000) == 200)
        // The worker goes on with the other levels meanwhile.
        #expect(try site.post(3, 5000) == 200)
        try site.cluster.waitUntil("a move into silver") { try site.status(3) == "committed" }
        #expect(try site.status(2) == "queued")
        #expect(try FileManager.default.contentsOfDirectory(atPath: site.gold.path).isEmpty, "the bare mountpoint stays empty")

        try site.gold.attach()
        try site.cluster.waitUntil("gold back in service and the move done") { try site.status(2) == "committed" }
        #expect(site.cluster.log("w1").contains("level 'gold' is back in service"))
        #expect(try TestFiles.sha256(site.backing + "/a.bin") == sums[1] && TestFiles.sha256(site.backing + "/b.bin") == sums[2])
        try site.gold.detach()
        #expect(try FileManager.default.contentsOfDirectory(atPath: site.gold.path).isEmpty, "nothing was ever written to the bare mountpoint")
        try site.gold.attach()
    }

    @Test func aMoveInFlightWhenItsLevelIsUnmountedWaitsWithoutAnAttemptAndFinishesOnceItIsBack() throws {
        let site = try Site()
        defer { site.tearDown() }
        let sum = try site.add(1, "a.bin")
        try site.cluster.startAPI()
        try site.cluster.startCommitter()
        let worker = try site.cluster.startWorker("w1", concurrency: 1, environment: ["RELOCATOR_FAULTS": "stop-after=copied",
                                                                                   "RELOCATOR_DEFER_RETRY_MS": "300"])
        defer { worker.signal(SIGCONT) }
        #expect(try site.post(1, 50000) == 200)
        try site.cluster.waitUntil("the copy written, the worker paused") { worker.isStopped }
        try site.gold.detach()
        worker.signal(SIGCONT)
        try site.cluster.waitUntil("the move deferred") {
            (try HTTP.get(site.cluster.apiPort!, "/v1/jobs/1").json?["defer_reason"] as? String)?.contains("level 'gold'") == true
        }
        #expect(try HTTP.get(site.cluster.apiPort!, "/v1/jobs/1").json?["attempts"] as? Int == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: site.gold.path).isEmpty)
        try site.gold.attach()
        try site.cluster.waitUntil("the move done once gold is back", timeout: .seconds(90)) { try site.status(1) == "committed" }
        #expect(try TestFiles.sha256(site.backing + "/a.bin") == sum)
        #expect(!TestFiles.exists(site.bronze + "/a.bin"))
        #expect(TestFiles.partFiles(under: site.backing).isEmpty)
    }
}
