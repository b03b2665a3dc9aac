import Foundation
import Testing
import TestSupport

/// A content's filename changed by an operator (`contents add` with a new name): refused while the
/// content has a job in flight — its move would take the file of the old name, which may be another
/// content's by then — and a count the API read before the change reads the new name.
@Suite(.serialized) struct RenameTests {
    @Test func aFilenameChangesOnlyWithoutAJobInFlightAndACountReadBeforeReadsItAgain() throws {
        let root = try TemporaryDirectory("relocator-rename")
        defer { root.remove() }
        for level in ["bronze", "silver", "gold"] {
            try FileManager.default.createDirectory(atPath: root.path + "/" + level, withIntermediateDirectories: true)
        }
        let cluster = try Cluster(redis: try TestEnvironment.value("RELOCATOR_TEST_REDIS_URL"), database: .sqlite(path: root.path + "/db.sqlite"),
                                  levels: ["bronze", "silver", "gold"].map { ($0, root.path + "/" + $0) })
        defer { cluster.stop() }
        for command in [["migrate"], ["levels", "--seed-default"], ["contents", "add", "--cid", "60", "--filename", "p.bin", "--level", "bronze"]] {
            let result = try cluster.run(command)
            try #require(result.status == 0, "\(command): \(result.stderr)")
        }
        try TestFiles.make(root.path + "/bronze/p.bin", bytes: 1000)
        try cluster.startAPI()
        func post(_ count: Int) throws -> Int {
            try HTTP.postForm(cluster.apiPort!, "/post_sentence", [("cid", "60"), ("count", String(count))]).status
        }
        func job() throws -> [String: Any]? { try HTTP.get(cluster.apiPort!, "/v1/jobs/60").json }
        // The API reads the content (and keeps what it read).
        #expect(try post(5) == 200)

        // No job: the name changes (the operator renamed the file too), and the next count reads it.
        let renamed = try cluster.run(["contents", "add", "--cid", "60", "--filename", "r.bin", "--level", "bronze"])
        #expect(renamed.status == 0, "\(renamed.stderr)")
        try FileManager.default.moveItem(atPath: root.path + "/bronze/p.bin", toPath: root.path + "/bronze/r.bin")
        #expect(try post(20000) == 200)
        let queued = try job()
        #expect(queued?["filename"] as? String == "r.bin", "\(String(describing: queued))")

        // A job in flight (no worker takes it here): the name stays.
        let refused = try cluster.run(["contents", "add", "--cid", "60", "--filename", "q.bin", "--level", "bronze"])
        #expect(refused.status != 0 && refused.stderr.contains("cid 60 has a job in flight"), "\(refused.stderr)")
        let listed = try cluster.run(["contents", "list"])
        #expect(listed.stdout.contains("r.bin") && !listed.stdout.contains("q.bin"), "\(listed.stdout)")
    }
}
