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
        // The heartbeat is written anew: status stops naming the level.
        try site.cluster.waitUntil("status names no level out of service") { try !site.cluster.run(["status"]).stdout.contains("out of service") }
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

    /// A level seen in use before whose mountpoint is bare when a worker or reconcile starts
    /// (`.relocator/` missing): out of service from the start — nothing lands in the bare
    /// mountpoint, nothing is taken out of it for missing, and reconcile says it left it alone —
    /// until the disk is mounted, which the worker then holds. A level never seen before is
    /// initialised by the first worker and recorded as seen.
    @Test func aLevelInUseBeforeWhoseMountpointIsBareAtStartIsNotUsed() throws {
        let site = try Site()
        defer { site.tearDown() }
        let sum = try site.add(1, "a.bin")
        #expect(try site.cluster.run(["contents", "add", "--cid", "2", "--filename", "b.bin", "--level", "gold"]).status == 0)
        let goldSum = try TestFiles.make(site.gold.path + "/b.bin", bytes: 300_000)
        try site.cluster.startAPI()
        try site.cluster.startCommitter()
        // A fresh installation: the first worker creates .relocator/ in every level and records them.
        let first = try site.cluster.startWorker("w1", concurrency: 1)
        try site.cluster.waitUntil("w1 started") { site.cluster.log("w1").contains("started") }
        #expect(TestFiles.exists(site.backing + "/.relocator") && TestFiles.exists(site.bronze + "/.relocator"))
        _ = first.stop()

        try site.gold.detach()
        try site.cluster.startWorker("w2", concurrency: 1, environment: ["RELOCATOR_DEFER_RETRY_MS": "300"])
        try site.cluster.waitUntil("w2 takes gold out of service at its start") {
            try site.cluster.run(["status"]).stdout.contains("level gold out of service on w2")
        }
        #expect(site.cluster.log("w2").contains("has no .relocator/ although level 'gold' was in use before"))
        #expect(try site.post(1, 50000) == 200)
        #expect(try site.post(2, 10) == 200)
        try site.cluster.waitUntil("the move out of gold waits") {
            (try HTTP.get(site.cluster.apiPort!, "/v1/jobs/2").json?["defer_reason"] as? String)?.contains("level 'gold'") == true
        }
        #expect(try site.status(1) == "queued")
        let reconcile = try site.cluster.run(["reconcile", "--fix"])
        #expect(reconcile.status == 2 && reconcile.stdout.contains("level_unavailable: level 'gold' not looked at"), "\(reconcile.stdout)")
        #expect(!reconcile.stdout.contains("cid=2"), "\(reconcile.stdout)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: site.gold.path).isEmpty, "the bare mountpoint stays empty")

        // Mounted again: the worker never used the bare directory, and takes the disk from now on.
        try site.gold.attach()
        try site.cluster.waitUntil("both moves done") { try site.status(1) == "committed" && site.status(2) == "committed" }
        #expect(site.cluster.log("w2").contains("level 'gold' is back in service"))
        try site.cluster.waitUntil("status names no level out of service") { try !site.cluster.run(["status"]).stdout.contains("out of service") }
        #expect(try TestFiles.sha256(site.backing + "/a.bin") == sum && TestFiles.sha256(site.bronze + "/b.bin") == goldSum)
        try site.gold.detach()
        #expect(try FileManager.default.contentsOfDirectory(atPath: site.gold.path).isEmpty, "nothing was ever written to the bare mountpoint")
        try site.gold.attach()
    }

    /// `relocator levels init` starts a level afresh on purpose (a disk replaced by an empty one):
    /// a worker holding that directory takes the level back into service.
    @Test func levelsInitStartsALevelAfreshOnPurpose() throws {
        let site = try Site()
        defer { site.tearDown() }
        let sum = try site.add(1, "a.bin")
        try site.cluster.startAPI()
        try site.cluster.startCommitter()
        let first = try site.cluster.startWorker("w1", concurrency: 1)
        try site.cluster.waitUntil("w1 started") { site.cluster.log("w1").contains("started") }
        _ = first.stop()
        try site.gold.detach()
        // What `levels init` puts in the bare mountpoint goes before the mountpoint is removed.
        defer {
            site.cluster.stop()
            for name in (try? FileManager.default.contentsOfDirectory(atPath: site.gold.path)) ?? [] {
                try? FileManager.default.removeItem(atPath: site.gold.path + "/" + name)
            }
        }
        try site.cluster.startWorker("w2", concurrency: 1)
        try site.cluster.waitUntil("gold out of service") { try site.cluster.run(["status"]).stdout.contains("level gold out of service on w2") }
        #expect(try site.post(1, 50000) == 200)
        let initialised = try site.cluster.run(["levels", "init", "gold"])
        #expect(initialised.status == 0 && initialised.stdout.contains("created .relocator/"), "\(initialised.stdout)\(initialised.stderr)")
        try site.cluster.waitUntil("gold back in service and the move done") { try site.status(1) == "committed" }
        try site.cluster.waitUntil("status names no level out of service") { try !site.cluster.run(["status"]).stdout.contains("out of service") }
        #expect(try TestFiles.sha256(site.gold.path + "/a.bin") == sum)
        let again = try site.cluster.run(["levels", "init", "gold"])
        #expect(again.status == 0 && again.stdout.contains("has its .relocator/ already"))
        let unknown = try site.cluster.run(["levels", "init", "platinum"])
        #expect(unknown.status != 0 && unknown.stderr.contains("level 'platinum' has no directory in RELOCATOR_LEVELS"), "\(unknown.stderr)")
    }
}
