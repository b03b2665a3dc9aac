import Foundation
import Testing
import TestSupport

/// Interleavings of the move protocol that the explorer (`ExplorerTests`) covers in memory,
/// replayed with the real binary on real filesystems: a worker stops itself (SIGSTOP) right after
/// a step of its move — a VM pause, a long fsync — is reaped as dead while it still holds the
/// content's lock, a count sends the file back where it came from, another worker takes the job,
/// and then the first wakes (SIGCONT) or is killed. Every run ends with exactly one intact copy,
/// where SQL says.
@Suite(.serialized) struct InterleavingReplayTests {
    enum Wake: String { case resume, kill }

    static let cases: [(step: String, level: String, wake: Wake)] = [
        ("published", "gold", .resume),               // across filesystems, copy published, source still there
        ("copied", "gold", .resume),                   // across filesystems, nothing recorded or published yet
        ("published", "silver", .resume),              // one filesystem, linked under both names
        ("targetDirectorySynced", "gold", .kill),      // the paused worker never wakes: its lock goes with it
    ]

    @Test(arguments: cases.map { "\($0.step) → \($0.level), \($0.wake.rawValue)" })
    func aReapedWorkerThatWakesAfterTheCountTurnedBackLosesNothing(point: String) throws {
        let (step, level, wake) = Self.cases.first { "\($0.step) → \($0.level), \($0.wake.rawValue)" == point }!
        let pipeline = try Pipeline(environment: ["RELOCATOR_HEARTBEAT_TTL_MS": "600", "RELOCATOR_RETRY_BASE_MS": "200"])
        defer { pipeline.tearDown() }
        let sums = try pipeline.addContents([(1, "x.bin", "bronze", 3_000_000)])
        try pipeline.cluster.startAPI()
        try pipeline.cluster.startCommitter()
        let paused = try pipeline.cluster.startWorker("paused", concurrency: 1, environment: ["RELOCATOR_FAULTS": "stop-after=\(step)"])
        defer { paused.signal(SIGCONT) }
        #expect(try pipeline.post(1, level == "gold" ? 50000 : 5000).status == 200)
        try pipeline.cluster.waitUntil("the worker stops after \(step)") { paused.isStopped }

        // Another worker reaps the paused one and takes the job: the content's lock is held, so it
        // waits (deferred, no attempt), whatever the count says meanwhile.
        try pipeline.cluster.startWorker("other", concurrency: 1)
        try pipeline.cluster.waitUntil("the reap") { try pipeline.job(1)?["fence"] as? Int != nil }
        #expect(try pipeline.post(1, 10).status == 200)
        do {
            try pipeline.cluster.waitUntil("the other worker finds the content locked") {
                (try pipeline.job(1)?["defer_reason"] as? String)?.contains("lock") == true
            }
        } catch {
            Issue.record("\(error): the job is \(String(describing: try? pipeline.job(1)))")
            throw error
        }
        let waiting = try #require(try pipeline.job(1))
        #expect(waiting["next_target"] as? String == "bronze" && waiting["attempts"] as? Int == 0, "\(waiting)")
        #expect(!pipeline.whereIs("x.bin").isEmpty)

        switch wake {
        case .resume: paused.signal(SIGCONT)
        case .kill: paused.crash()
        }
        // The move finishes where it was aimed, then the count's follow-up brings the file back.
        try pipeline.cluster.waitUntil("the follow-up committed", timeout: .seconds(90)) {
            let job = try pipeline.job(1)
            return job?["status"] as? String == "committed" && job?["target"] as? String == "bronze"
        }
        #expect(pipeline.whereIs("x.bin") == ["bronze"], "\(pipeline.cluster.log("paused"))")
        #expect(try TestFiles.sha256(pipeline.directories["bronze"]! + "/x.bin") == sums[1])
        #expect(try pipeline.level(of: 1) == "bronze")
        if wake == .resume {
            try pipeline.cluster.waitUntil("the woken worker gives up its stale delivery") {
                pipeline.cluster.log("paused").contains("no longer this delivery's")
            }
        }
    }
}
