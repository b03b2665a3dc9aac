import Foundation
import Testing
import TestSupport

/// A level whose filesystem stops answering under a running worker (a hard NFS mount whose server
/// is gone, a stalled device; here a FUSE passthrough whose daemon is stopped): the worker's
/// heartbeat goes on — it is not taken for dead, its jobs are not given to others — the level is
/// out of service ("not answering") while the worker goes on with its other levels, and once the
/// filesystem answers again the level is back and its moves are done.
@Suite(.serialized) struct HungLevelTests {
    /// Bronze and silver on disk, gold on a FUSE passthrough; contents 1–3 (300 kB each) on bronze,
    /// content 4 on gold; the committer running, and the API unless told not to. Every process
    /// has the level directories (`RELOCATOR_LEVELS`), as on a host with the disks.
    final class Site {
        let root: TemporaryDirectory
        let gold: FuseLevel
        let cluster: Cluster
        var sums: [Int: String] = [:]

        /// While this file exists, a directory's fsync on gold waits (everything else answers).
        var goldFsyncHold: String { root.path + "/hold-gold-directory-fsync" }

        init(startAPI: Bool = true) throws {
            let root = try TemporaryDirectory("relocator-hung")
            self.root = root
            do {
                for directory in ["gold-disk", "bronze", "silver"] {
                    try FileManager.default.createDirectory(atPath: root.path + "/" + directory, withIntermediateDirectories: true)
                }
                gold = try FuseLevel(serving: root.path + "/gold-disk", holdingDirectoryFsyncWhile: root.path + "/hold-gold-directory-fsync")
            } catch {
                root.remove()
                throw error
            }
            do {
                cluster = try Cluster(redis: try TestEnvironment.value("RELOCATOR_TEST_REDIS_URL"), database: .sqlite(path: root.path + "/db.sqlite"),
                                      levels: [("gold", gold.path), ("silver", root.path + "/silver"), ("bronze", root.path + "/bronze")],
                                      environment: ["RELOCATOR_HEARTBEAT_TTL_MS": "600", "RELOCATOR_DEFER_RETRY_MS": "300"])
            } catch {
                gold.remove()
                root.remove()
                throw error
            }
            do {
                for command in [["migrate"], ["levels", "--seed-default"]] {
                    let result = try cluster.run(command)
                    try #require(result.status == 0, "\(command): \(result.stderr)")
                }
                for cid in 1...3 {
                    let result = try cluster.run(["contents", "add", "--cid", String(cid), "--filename", "c\(cid).bin", "--level", "bronze"])
                    try #require(result.status == 0, "contents add: \(result.stderr)")
                    sums[cid] = try TestFiles.make(root.path + "/bronze/c\(cid).bin", bytes: 300_000)
                }
                let result = try cluster.run(["contents", "add", "--cid", "4", "--filename", "c4.bin", "--level", "gold"])
                try #require(result.status == 0, "contents add: \(result.stderr)")
                sums[4] = try TestFiles.make(root.path + "/gold-disk/c4.bin", bytes: 300_000)
                if startAPI { try cluster.startAPI() }
                try cluster.startCommitter()
            } catch {
                tearDown()
                throw error
            }
        }

        /// The level answers before the processes are stopped (a stop during a hang waits out its kill).
        func tearDown() {
            unlink(goldFsyncHold)
            gold.answer()
            cluster.stop()
            gold.remove()
            root.remove()
        }

        /// Each content's filename: `c<cid>.bin`, unless `add` put it in a directory of its own.
        var names: [Int: String] = [:]

        func name(_ cid: Int) -> String { names[cid] ?? "c\(cid).bin" }

        /// The path of content `cid`'s file on `level` (gold's: in its backing directory).
        func path(_ cid: Int, on level: String) -> String {
            root.path + "/" + (level == "gold" ? "gold-disk" : level) + "/" + name(cid)
        }

        /// Content `cid` (1,000 bytes) on `level`; `ownDirectory`: as `d<cid>/c<cid>.bin`.
        func add(_ cid: Int, on level: String, ownDirectory: Bool = false) throws {
            if ownDirectory {
                names[cid] = "d\(cid)/c\(cid).bin"
                try FileManager.default.createDirectory(atPath: root.path + "/" + (level == "gold" ? "gold-disk" : level) + "/d\(cid)",
                                                        withIntermediateDirectories: true)
            }
            let result = try cluster.run(["contents", "add", "--cid", String(cid), "--filename", name(cid), "--level", level])
            try #require(result.status == 0, "contents add: \(result.stderr)")
            sums[cid] = try TestFiles.make(path(cid, on: level), bytes: 1000)
        }

        func post(_ cid: Int, _ count: Int) throws -> Int {
            try HTTP.postForm(cluster.apiPort!, "/post_sentence", [("cid", String(cid)), ("count", String(count))]).status
        }

        func status(_ cid: Int) throws -> String? {
            try HTTP.get(cluster.apiPort!, "/v1/jobs/\(cid)").json?["status"] as? String
        }

        /// Worker w1 moves content 4 from gold to bronze, and its source directory's fsync does not
        /// return: the copy is published and the source removed, and the move is not acknowledged.
        /// Worker w1 started, then gold's directory fsyncs held (`goldFsyncHold`).
        @discardableResult
        func startWorkerWithGoldsFsyncHeld() throws -> ChildProcess {
            let worker = try cluster.startWorker("w1", concurrency: 2)
            try cluster.waitUntil("the worker to start") { cluster.log("w1").contains("started") }
            try #require(FileManager.default.createFile(atPath: goldFsyncHold, contents: Data()))
            return worker
        }

        @discardableResult
        func holdGoldsFsyncUnderAMoveOutOfGold(_ cid: Int = 4) throws -> ChildProcess {
            let worker = try startWorkerWithGoldsFsyncHeld()
            #expect(try post(cid, 10) == 200)
            try cluster.waitUntil("gold's copy published in bronze and its source removed") {
                !FileManager.default.fileExists(atPath: path(cid, on: "gold")) && FileManager.default.fileExists(atPath: path(cid, on: "bronze"))
            }
            #expect(try status(cid) != "committed")
            return worker
        }

        /// Gold out of service for w1 once an fsync in it has waited past the patience, and so logged.
        func goldOutOfServiceOnAnFsync() throws {
            try cluster.waitUntil("gold out of service once the fsync waited past the patience") {
                try cluster.run(["status"]).stdout.contains("level gold out of service on w1")
            }
            #expect(cluster.wholeLog("w1").contains("level 'gold' is out of service for this worker: an fsync in it has not returned within"),
                    "\(cluster.log("w1"))")
        }

        /// A move into gold (cid 2) waits without an attempt while a move into silver (cid 3) is
        /// done; once gold answers, the move into gold is done too.
        func goldWaitsWhileSilverIsServed(release: (() -> Void)? = nil) throws {
            #expect(try post(2, 50000) == 200)
            #expect(try post(3, 5000) == 200)
            try cluster.waitUntil("a move into silver while gold hangs") { try status(3) == "committed" }
            // Taken by a slot already waiting for a job, it is put off without an attempt, not moved
            // into the level that does not answer.
            let waiting = try HTTP.get(cluster.apiPort!, "/v1/jobs/2").json
            #expect(["queued", "deferred"].contains(waiting?["status"] as? String), "\(String(describing: waiting))")
            #expect(waiting?["attempts"] as? Int == 0)

            (release ?? gold.answer)()
            try cluster.waitUntil("gold back in service and its move done") { try status(2) == "committed" }
            try cluster.waitUntil("the worker says gold is back") { cluster.wholeLog("w1").contains("level 'gold' is back in service") }
            #expect(try TestFiles.sha256(root.path + "/gold-disk/c2.bin") == sums[2])
            #expect(try TestFiles.sha256(root.path + "/silver/c3.bin") == sums[3])
        }
    }

    @Test func aLevelThatStopsAnsweringIsOutOfServiceWhileTheWorkerGoesOnWithTheOthers() throws {
        try #require(FuseLevel.missing == nil, "\(FuseLevel.missing ?? "")")
        let site = try Site()
        defer { site.tearDown() }
        let cluster = site.cluster
        try cluster.startWorker("w1", concurrency: 2)
        #expect(try site.post(1, 50000) == 200)
        try cluster.waitUntil("a move into gold through its filesystem") { try site.status(1) == "committed" }

        site.gold.hang()
        try cluster.waitUntil("the worker takes gold out of service, its heartbeat going on") {
            try cluster.run(["status"]).stdout.contains("level gold out of service on w1")
        }
        #expect(cluster.log("w1").contains("has not answered a check within"))
        // The worker goes on with the other levels; a move into gold waits in its queue.
        try site.goldWaitsWhileSilverIsServed()
        #expect(try TestFiles.sha256(site.root.path + "/gold-disk/c1.bin") == site.sums[1])
    }

    /// A move out of gold whose source directory's fsync does not return (gold's writeback stalls
    /// after its source was removed): only gold waits. The moves of the other levels are
    /// acknowledged meanwhile, more of them than a level's finisher holds; gold is out of service
    /// once the fsync has waited past the patience; once it returns, gold's move is acknowledged.
    @Test func aSourceDirectoryWhoseFsyncDoesNotReturnHoldsUpOnlyItsLevel() throws {
        try #require(FuseLevel.missing == nil, "\(FuseLevel.missing ?? "")")
        let site = try Site()
        defer { site.tearDown() }
        let cluster = site.cluster
        // (Each in a directory of its own: on FUSE a directory is locked while it is fsynced, and
        // a lookup in it would wait too.)
        for cid in 5...10 { try site.add(cid, on: "gold", ownDirectory: true) }
        try site.holdGoldsFsyncUnderAMoveOutOfGold(5)
        // More moves out of gold: their sources removed, they fill gold's finisher (4 moves here)
        // and then both slots wait on its backlog, until the fsync has waited past the patience.
        for cid in 6...10 { #expect(try site.post(cid, 10) == 200) }
        try cluster.waitUntil("the sources of the moves out of gold removed") {
            (6...10).allSatisfy { !FileManager.default.fileExists(atPath: site.path($0, on: "gold")) }
        }
        // The other levels' moves are acknowledged meanwhile.
        for cid in 11...13 { try site.add(cid, on: "bronze") }
        for cid in [1, 2, 3, 11, 12, 13] { #expect(try site.post(cid, 5000) == 200) }
        try cluster.waitUntil("the moves into silver while gold's fsync waits") {
            try [1, 2, 3, 11, 12, 13].allSatisfy { try site.status($0) == "committed" }
        }
        try site.goldOutOfServiceOnAnFsync()
        #expect(try site.status(5) != "committed")

        unlink(site.goldFsyncHold)
        try cluster.waitUntil("gold's moves acknowledged once its fsync returned") {
            try (5...10).allSatisfy { try site.status($0) == "committed" }
        }
        try cluster.waitUntil("the worker says gold is back") { cluster.wholeLog("w1").contains("level 'gold' is back in service") }
        for cid in [1, 2, 3, 11, 12, 13] {
            #expect(try TestFiles.sha256(site.path(cid, on: "silver")) == site.sums[cid])
        }
        for cid in 5...10 {
            #expect(try TestFiles.sha256(site.path(cid, on: "bronze")) == site.sums[cid])
            #expect(!FileManager.default.fileExists(atPath: site.path(cid, on: "gold")))
        }
    }

    /// A move into gold whose directory's fsync does not return (gold's writeback stalls while
    /// what is cached still answers its checks) holds up only its own slot: gold is out of service
    /// once the fsync has waited past the patience, so no other slot takes a move into it, and
    /// the other levels' moves go on; once the fsync returns, gold's moves are done.
    @Test func aMoveIntoALevelWhoseFsyncDoesNotReturnHoldsUpOnlyItsSlot() throws {
        try #require(FuseLevel.missing == nil, "\(FuseLevel.missing ?? "")")
        let site = try Site()
        defer { site.tearDown() }
        let cluster = site.cluster
        try site.startWorkerWithGoldsFsyncHeld()
        #expect(try site.post(1, 50000) == 200)
        try site.goldOutOfServiceOnAnFsync()
        try site.goldWaitsWhileSilverIsServed { unlink(site.goldFsyncHold) }
        try cluster.waitUntil("the first move into gold done once its fsync returned") { try site.status(1) == "committed" }
        #expect(try TestFiles.sha256(site.root.path + "/gold-disk/c1.bin") == site.sums[1])
    }

    /// A worker stopped while an fsync of gold's does not return: after the grace period it gives
    /// the held move back and stops; the next delivery, once gold answers, syncs the directory and
    /// commits the move.
    @Test func aWorkerWhoseLevelsFsyncDoesNotReturnStopsAndGivesTheMoveBack() throws {
        try #require(FuseLevel.missing == nil, "\(FuseLevel.missing ?? "")")
        let site = try Site()
        defer { site.tearDown() }
        let cluster = site.cluster
        let worker = try site.holdGoldsFsyncUnderAMoveOutOfGold()
        try site.goldOutOfServiceOnAnFsync()
        worker.signal(SIGTERM)
        try cluster.waitUntil("the worker to stop") { cluster.log("w1").contains("info relocator.worker: stopped") }
        #expect(cluster.wholeLog("w1").contains("an fsync of a directory of level 'gold' has not returned: its moves, whose files are published, go back to their queues"),
                "\(cluster.log("w1"))")
        #expect(try site.status(4) == "queued")
        // (The process itself ends once the fsync returns: a thread in a FUSE request the daemon
        // has not answered cannot be killed.)
        unlink(site.goldFsyncHold)
        #expect(worker.wait(timeout: .seconds(60)) == 0, "\(cluster.log("w1"))")
        try cluster.startWorker("w2", concurrency: 2)
        try cluster.waitUntil("gold's move committed by the next delivery") { try site.status(4) == "committed" }
        #expect(try TestFiles.sha256(site.root.path + "/bronze/c4.bin") == site.sums[4])
        #expect(!FileManager.default.fileExists(atPath: site.root.path + "/gold-disk/c4.bin"))
    }

    /// A worker stopped while a slot's move is inside a level that does not answer: the move
    /// cannot be called off, and the worker says so once the grace period and the level patience
    /// are over — it keeps its heartbeat and the job (no other worker takes it meanwhile) — and
    /// gives the job back and ends once the level answers.
    @Test func aWorkerStoppedWhileAMoveWaitsInsideAHungLevelSaysSoAndGivesItBackOnceItAnswers() throws {
        try #require(FuseLevel.missing == nil, "\(FuseLevel.missing ?? "")")
        let site = try Site()
        defer { site.tearDown() }
        let cluster = site.cluster
        let worker = try cluster.startWorker("w1", concurrency: 1)
        try cluster.waitUntil("the worker to start") { cluster.log("w1").contains("started") }
        site.gold.hang()
        #expect(try site.post(4, 10) == 200)
        try cluster.waitUntil("the move out of gold taken") { try site.status(4) == "moving" }
        worker.signal(SIGTERM)
        try cluster.waitUntil("the worker to say its move has not stopped") {
            cluster.wholeLog("w1").contains("1 move has not stopped since the grace period ended")
        }
        #expect(cluster.wholeLog("w1").contains("this worker keeps its heartbeat and its jobs until they stop, and gives them back then"))
        #expect(try site.status(4) == "moving")
        site.gold.answer()
        #expect(worker.wait(timeout: .seconds(60)) == 0, "\(cluster.log("w1"))")
        try cluster.startWorker("w2", concurrency: 1)
        try cluster.waitUntil("the move done by the next worker") { try site.status(4) == "committed" }
        #expect(try TestFiles.sha256(site.path(4, on: "bronze")) == site.sums[4])
    }

    /// A worker and the API (re)started while a level's disk hangs: they start; the worker serves
    /// the other levels with the hung one out of service, and opens, checks and prepares that level
    /// once it answers.
    @Test func aWorkerStartedWhileALevelHangsServesTheOthersAndOpensItOnceItAnswers() throws {
        try #require(FuseLevel.missing == nil, "\(FuseLevel.missing ?? "")")
        let site = try Site(startAPI: false)
        defer { site.tearDown() }
        let cluster = site.cluster
        site.gold.hang()
        try cluster.startAPI()
        try cluster.startWorker("w1", concurrency: 2)
        try cluster.waitUntil("the worker starts with gold out of service") {
            try cluster.run(["status"]).stdout.contains("level gold out of service on w1")
        }
        #expect(cluster.log("w1").contains("level 'gold' is out of service for this worker"), "\(cluster.log("w1"))")
        try site.goldWaitsWhileSilverIsServed()
        #expect(cluster.log("w1").contains("level 'gold' answers: its directory \(site.gold.path) is open"))
        // Prepared once open, as at a start: gold, never used before, got its reserved directory.
        #expect(FileManager.default.fileExists(atPath: site.root.path + "/gold-disk/.relocator"))
    }

    /// The API, with the level directories, while gold's disk does not answer: a count of a content
    /// on gold, read for the first time, is answered (its path check is left to the workers), and
    /// so is a count of a content elsewhere; `why` says gold did not answer. No request waits on
    /// the disk beyond the API's patience, and the hung look holds up none after it.
    @Test func theAPIAnswersWhileALevelsDiskDoesNotAnswer() throws {
        try #require(FuseLevel.missing == nil, "\(FuseLevel.missing ?? "")")
        let site = try Site()
        defer { site.tearDown() }
        site.gold.hang()
        #expect(try site.post(4, 5000) == 200)
        #expect(try site.post(1, 5000) == 200)
        let why = try #require(try HTTP.get(site.cluster.apiPort!, "/v1/contents/4/why").json)
        let disks = try #require(why["disks"] as? [[String: Any]], "\(why)")
        let gold = disks.first { $0["level"] as? String == "gold" }
        #expect(gold?["state"] as? String == "not_answering", "\(disks)")
        #expect(disks.first { $0["level"] as? String == "bronze" }?["state"] as? String == "missing")
        #expect((why["summary"] as? String)?.contains("The file is on none of the level directories this process sees that answered. "
                                                      + "The directory of gold did not answer") == true, "\(why)")
        // Once gold answers, the file is seen there again.
        site.gold.answer()
        try site.cluster.waitUntil("why to see the file on gold") {
            let disks = try HTTP.get(site.cluster.apiPort!, "/v1/contents/4/why").json?["disks"] as? [[String: Any]] ?? []
            return disks.first { $0["level"] as? String == "gold" }?["state"] as? String == "file"
        }
    }

    /// `relocator reconcile` on a host where a level's disk does not answer: the run leaves that
    /// level alone, says why, checks the others and ends (rather than waiting for the disk).
    @Test func reconcileLeavesALevelWhoseDiskDoesNotAnswerAloneAndEnds() throws {
        try #require(FuseLevel.missing == nil, "\(FuseLevel.missing ?? "")")
        let site = try Site(startAPI: false)
        defer { site.tearDown() }
        // Content 1's file is gone from bronze: with gold silent it may be there, so it is not called missing.
        unlink(site.path(1, on: "bronze"))
        // Without the bounds, the run waits until this watchdog lets gold answer (a broken build
        // fails on what it reports then, rather than hanging).
        let watchdog = DispatchWorkItem { site.gold.answer() }
        DispatchQueue.global().asyncAfter(deadline: .now() + 600, execute: watchdog)
        defer { watchdog.cancel() }
        site.gold.hang()
        let report = try site.cluster.run(["reconcile", "--fix"])
        #expect(report.status == 2, "\(report.stderr)")
        #expect(report.stdout.contains("level_unavailable: level 'gold' not looked at: its directory \(site.gold.path) did not answer within "),
                "\(report.stdout)")
        #expect(report.stdout.contains("at the start (a stalled disk, or a network filesystem whose server is gone); "
                                       + "the 1 contents the database places on it were left alone"), "\(report.stdout)")
        #expect(report.stdout.contains("unverified cid=1: c1.bin is on no level that answered, the database says bronze"), "\(report.stdout)")
        #expect(!report.stdout.contains("missing"), "\(report.stdout)")
        #expect(report.stdout.contains("2 findings, 0 fixed, 2 need attention; 1 contents on levels out of service left alone"), "\(report.stdout)")
        site.gold.answer()
        let after = try site.cluster.run(["reconcile"])
        #expect(after.stdout.contains("missing cid=1: c1.bin is on no level's disk"), "\(after.stdout)")
    }

    /// The one-shot commands that look at the level directories end while a level's disk does not
    /// answer: `why` says so, `contents remove` and `levels init` of that level refuse, each with a
    /// one-line message and a non-zero exit, and nothing is changed.
    @Test func operatorCommandsEndWhileALevelsDiskDoesNotAnswer() throws {
        try #require(FuseLevel.missing == nil, "\(FuseLevel.missing ?? "")")
        let site = try Site(startAPI: false)
        defer { site.tearDown() }
        // Without the bounds, each command waits until this watchdog lets gold answer (a broken
        // build fails on what it prints then, rather than hanging).
        let watchdog = DispatchWorkItem { site.gold.answer() }
        DispatchQueue.global().asyncAfter(deadline: .now() + 600, execute: watchdog)
        defer { watchdog.cancel() }
        site.gold.hang()
        let why = try site.cluster.run(["why", "1", "--json"])
        #expect(why.status == 0, "\(why.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(why.stdout.utf8)) as? [String: Any], "\(why.stdout)")
        let disks = try #require(report["disks"] as? [[String: Any]], "\(report)")
        #expect(disks.first { $0["level"] as? String == "gold" }?["state"] as? String == "not_answering", "\(disks)")
        #expect(disks.first { $0["level"] as? String == "bronze" }?["state"] as? String == "file", "\(disks)")
        let remove = try site.cluster.run(["contents", "remove", "--cid", "1"])
        #expect(remove.status != 0 && remove.errorLines.count == 1, "\(remove.stderr)")
        #expect(remove.stderr.contains("cannot tell whether level 'gold' holds cid 1's file: its directory \(site.gold.path) did not answer within"),
                "\(remove.stderr)")
        #expect(remove.stderr.contains("nothing removed"), "\(remove.stderr)")
        let initialise = try site.cluster.run(["levels", "init", "gold"])
        #expect(initialise.status != 0 && initialise.errorLines.count == 1, "\(initialise.stderr)")
        #expect(initialise.stderr.contains("level gold (\(site.gold.path)): its directory \(site.gold.path) did not answer within"), "\(initialise.stderr)")
        site.gold.answer()
        #expect(TestFiles.exists(site.path(1, on: "bronze")))
        let after = try site.cluster.run(["contents", "list", "--json"])
        #expect(after.stdout.contains("\"cid\":1") || after.stdout.contains("\"cid\": 1"), "\(after.stdout)")
    }
}
