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
            (try pipeline.job(1)?["attempts"] as? Int ?? 0) >= 2
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

    /// A move whose copy is published but whose source the worker may not remove waits as a retry
    /// with its copy recorded; a count back to the source's level then removes the published copy
    /// instead of forgetting it — one copy, where the database says. (Earlier, the job was dropped and
    /// the file stayed on both levels.)
    @Test func aPublishedCopyWhoseSourceCannotGoIsRemovedWhenTheCountGoesBack() throws {
        let pipeline = try Pipeline(environment: ["RELOCATOR_RETRY_BASE_MS": "300", "RELOCATOR_MAX_ATTEMPTS": "50"])
        defer { pipeline.tearDown() }
        let bronze = pipeline.directories["bronze"]!, gold = pipeline.gold.path
        let sums = try pipeline.addContents([(1, "kept.mp4", "bronze", 200_000)])
        // nobody may read the source and write into gold, but not remove anything from bronze. Its
        // reserved directories are the worker's user's, as an operator sets up an unprivileged worker.
        chmod(pipeline.root.path, 0o755)
        chmod(bronze, 0o755)
        chmod(bronze + "/kept.mp4", 0o644)
        chown(gold, 65534, 65534)
        try TestFiles.makeReservedDirectory(in: bronze)
        for path in [bronze + "/.relocator", bronze + "/.relocator/tmp"] { chown(path, 65534, 65534) }
        let binary = pipeline.root.path + "/relocator"
        try FileManager.default.copyItem(atPath: try TestEnvironment.relocatorBinary().path, toPath: binary)
        chmod(binary, 0o755)

        try pipeline.cluster.startAPI()
        try pipeline.cluster.startCommitter()
        let worker = try ChildProcess("/usr/bin/setpriv", ["--reuid=nobody", "--regid=nogroup", "--clear-groups", binary,
                                                           "worker", "--id", "nobody-2", "--concurrency", "1"],
                                      environment: pipeline.cluster.environment,
                                      stderrPath: pipeline.cluster.directory.path + "/nobody.err", directory: pipeline.cluster.directory.path)
        defer { worker.stop() }
        #expect(try pipeline.post(1, 50000).status == 200)
        try pipeline.cluster.waitUntil("a failure after the copy was published", timeout: .seconds(30)) {
            let job = try pipeline.job(1)
            return job?["status"] as? String == "retrying" && job?["stage"] as? String == "publishing"
        }
        #expect(pipeline.whereIs("kept.mp4") == ["bronze", "gold"])
        #expect((try pipeline.job(1)?["last_error"] as? String)?.contains("EACCES") == true)

        // The count goes back: the job turns around and removes the copy it published.
        let back = try pipeline.post(1, 10)
        #expect(back.status == 200)
        try pipeline.cluster.waitUntil("the clean-up is committed", timeout: .seconds(30)) {
            try pipeline.job(1)?["status"] as? String == "committed"
        }
        #expect(pipeline.whereIs("kept.mp4") == ["bronze"])
        #expect(try TestFiles.sha256(bronze + "/kept.mp4") == sums[1])
        #expect(try pipeline.level(of: 1) == "bronze")
    }
}
