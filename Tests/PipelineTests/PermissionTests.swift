import Foundation
import Testing
import TestSupport

/// Root ignores permission bits, so the worker runs here as `nobody` (setpriv): a level directory it
/// may not write is a transient EACCES that is retried until an operator fixes the permissions.
@Suite(.serialized) struct PermissionTests {
    @Test func aDirectoryTheWorkerMayNotWriteIsRetriedUntilFixed() throws {
        let pipeline = try Pipeline(environment: ["RELOCATOR_RETRY_BASE_MS": "200", "RELOCATOR_MAX_ATTEMPTS": "50"])
        defer { pipeline.tearDown() }
        let bronze = pipeline.directories["bronze"]!, silver = pipeline.directories["silver"]!
        let sums = try pipeline.addContents([(1, "locked.mp4", "bronze", 30_000)])
        // nobody may read the source and remove it from bronze, but not write into silver (root's, 0755).
        chmod(pipeline.root.path, 0o755)
        chmod(bronze, 0o777)
        chmod(bronze + "/locked.mp4", 0o644)
        // The binary, where nobody can run it.
        let binary = pipeline.root.path + "/relocator"
        try FileManager.default.copyItem(atPath: try TestEnvironment.relocatorBinary().path, toPath: binary)
        chmod(binary, 0o755)

        try pipeline.cluster.startAPI()
        try pipeline.cluster.startCommitter()
        let worker = try ChildProcess("/usr/bin/setpriv", ["--reuid=nobody", "--regid=nogroup", "--clear-groups", binary,
                                                           "worker", "--id", "nobody-1", "--concurrency", "1"],
                                      environment: pipeline.cluster.environment,
                                      stderrPath: pipeline.cluster.directory.path + "/nobody.err", directory: pipeline.cluster.directory.path)
        defer { worker.stop() }
        #expect(try pipeline.post(1, 5000).status == 200)
        try pipeline.cluster.waitUntil("two failed attempts", timeout: .seconds(30)) {
            Int(try pipeline.job(1)?["attempts"] as? String ?? "0") ?? 0 >= 2
        }
        let job = try #require(try pipeline.job(1))
        #expect((job["last_error"] as? String)?.contains("EACCES") == true, "\(job)")
        #expect(job["status"] as? String != "dead")
        #expect(pipeline.whereIs("locked.mp4") == ["bronze"])

        // The operator gives the worker's user the directory.
        chown(silver, 65534, 65534)
        try pipeline.cluster.waitUntil("the commit", timeout: .seconds(30)) { try pipeline.job(1)?["status"] as? String == "committed" }
        #expect(pipeline.whereIs("locked.mp4") == ["silver"])
        #expect(try TestFiles.sha256(silver + "/locked.mp4") == sums[1])
    }
}
