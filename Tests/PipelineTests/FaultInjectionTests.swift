import Foundation
import Testing
import TestSupport

/// Faults injected into the real worker binary with `RELOCATOR_FAULTS`.
@Suite(.serialized) struct FaultInjectionTests {
    static let crashPoints: [(fault: String, target: String)] =
        ["copied", "synced", "verified", "published", "targetDirectorySynced", "sourceRemoved", "sourceDirectorySynced"]
            .map { ("crash-after=\($0)", "gold") }
        + ["published", "targetDirectorySynced", "sourceRemoved", "sourceDirectorySynced"].map { ("crash-after=\($0)", "silver") }
        + [("crash-before-ack", "gold"), ("crash-before-ack", "silver")]

    /// A crash between any two steps of the move, or between the move and the ack: another worker
    /// finishes the job, the file exists once with its bytes, no temporary file is left, and the
    /// crash did not count as an attempt.
    @Test(arguments: crashPoints.map { "\($0.fault) → \($0.target)" })
    func aCrashAtAnyPointIsFinishedByAnotherWorker(point: String) throws {
        let (fault, target) = Self.crashPoints.first { "\($0.fault) → \($0.target)" == point }!
        let pipeline = try Pipeline()
        defer { pipeline.tearDown() }
        let sums = try pipeline.addContents([(1, "movie.mkv", "bronze", 300_000)])
        try pipeline.cluster.startAPI()
        try pipeline.cluster.startCommitter()
        let crasher = try pipeline.cluster.startWorker("crasher", concurrency: 1, environment: ["RELOCATOR_FAULTS": fault])
        #expect(try pipeline.post(1, target == "gold" ? 50000 : 5000).status == 200)
        #expect(crasher.wait(timeout: .seconds(30)) == 128 + SIGKILL, "\(pipeline.cluster.log("crasher"))")

        try pipeline.cluster.startWorker("rescuer", concurrency: 1)
        try pipeline.cluster.waitUntil("the commit") { try pipeline.job(1)?["status"] as? String == "committed" }
        let job = try #require(try pipeline.job(1))
        #expect(job["attempts"] as? Int == 0)
        #expect(pipeline.whereIs("movie.mkv") == [target])
        #expect(try TestFiles.sha256(pipeline.directories[target]! + "/movie.mkv") == sums[1])
        #expect(TestFiles.partFiles(under: pipeline.root.path).isEmpty && TestFiles.partFiles(under: pipeline.gold.path).isEmpty)
        let moves = try pipeline.relocations()
        let recorded = try TestFiles.recordedChecksum(pipeline.directories[target]! + "/movie.mkv")
        #expect(moves.count == 1 && moves[0].checksum == recorded)
    }

    @Test func aByteCorruptedBeforeReadBackIsRetriedAndNeverCommitted() throws {
        let pipeline = try Pipeline()
        defer { pipeline.tearDown() }
        let sums = try pipeline.addContents([(1, "once.bin", "bronze", 400_000), (2, "twice.bin", "bronze", 400_000)])
        try pipeline.cluster.startAPI()
        try pipeline.cluster.startCommitter()
        try pipeline.cluster.startWorker("w1", concurrency: 1, environment: ["RELOCATOR_FAULTS": "corrupt-read-back=1"])
        #expect(try pipeline.post(1, 50000).status == 200)
        try pipeline.cluster.waitUntil("the commit") { try pipeline.job(1)?["status"] as? String == "committed" }
        let job = try #require(try pipeline.job(1))
        #expect(job["attempts"] as? Int == 1)
        // The mismatch stays readable as the history of the job, not as a current error.
        #expect((job["last_error"] == nil || job["last_error"] is NSNull) && (job["earlier_error"] as? String)?.contains("checksum_mismatch") == true)
        #expect(try TestFiles.sha256(pipeline.gold.path + "/once.bin") == sums[1])
        let recorded = try TestFiles.recordedChecksum(pipeline.gold.path + "/once.bin")
        #expect(try pipeline.relocations().first?.checksum == recorded)
        pipeline.cluster.stop(keepLogs: true)

        // The same mismatch twice is permanent: dead, source untouched, nothing published.
        try pipeline.cluster.startAPI()
        try pipeline.cluster.startWorker("w2", concurrency: 1, environment: ["RELOCATOR_FAULTS": "corrupt-read-back=2"])
        #expect(try pipeline.post(2, 50000).status == 200)
        try pipeline.cluster.waitUntil("the dead letter") { try pipeline.job(2)?["status"] as? String == "dead" }
        #expect(pipeline.whereIs("twice.bin") == ["bronze"])
        #expect(try TestFiles.sha256(pipeline.directories["bronze"]! + "/twice.bin") == sums[2])
        #expect(TestFiles.partFiles(under: pipeline.gold.path).isEmpty)
    }

    @Test func anUnknownFaultIsRefusedAtStart() throws {
        let pipeline = try Pipeline()
        defer { pipeline.tearDown() }
        let worker = try pipeline.cluster.startWorker("w1", environment: ["RELOCATOR_FAULTS": "crash-after=never"])
        #expect(worker.wait(timeout: .seconds(10)) != 0)
        #expect(pipeline.cluster.log("w1").contains("RELOCATOR_FAULTS"))
    }
}
