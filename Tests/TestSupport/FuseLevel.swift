import Foundation

/// A directory served through a FUSE passthrough (Scripts/fuse-level.py) that can stop answering:
/// `hang()` stops the daemon (SIGSTOP), and every access to `path` waits — as on a hard NFS mount
/// whose server is gone — until `answer()`. `remove()` answers, unmounts and stops the daemon by
/// its PID; the backing directory is the caller's.
public final class FuseLevel: @unchecked Sendable {
    public let path: String
    private let daemon: ChildProcess
    private var mounted = true

    /// Why a test that needs FUSE cannot run here; nil when it can.
    public static var missing: String? {
        guard FileManager.default.fileExists(atPath: "/dev/fuse") else { return "no /dev/fuse on this machine" }
        let probe = try? ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/python3"), ["-c", "import fusepy"])
        return probe?.status == 0 ? nil : "Debian's python3-fusepy for /usr/bin/python3 (Scripts/setup installs it)"
    }

    /// `holdingDirectoryFsyncWhile`: a directory's fsync waits for as long as that file exists,
    /// and every other access answers (a device whose writeback stalls). `holdingLockFileOpenWhile`:
    /// an open of the level's lock file (`.relocator/lock`) waits for as long as that file exists.
    /// `holdingRootListingWhile`: a listing of the level directory itself waits so.
    public init(serving backing: String, holdingDirectoryFsyncWhile hold: String? = nil, holdingLockFileOpenWhile lockHold: String? = nil,
                holdingRootListingWhile listingHold: String? = nil) throws {
        path = try TemporaryDirectory("relocator-fuse").path
        let script = TestEnvironment.packageRoot.path + "/Scripts/fuse-level.py"
        let holds = (hold.map { ["--hold-directory-fsync-while", $0] } ?? []) + (lockHold.map { ["--hold-lock-file-open-while", $0] } ?? [])
            + (listingHold.map { ["--hold-root-listing-while", $0] } ?? [])
        daemon = try ChildProcess("/usr/bin/python3", [script, backing, path] + holds, environment: ProcessInfo.processInfo.environment,
                                  stderrPath: path + ".log")
        let deadline = ContinuousClock.now + .seconds(30)
        while !Self.isMounted(path) {
            guard daemon.isRunning, ContinuousClock.now < deadline else {
                let log = (try? String(contentsOfFile: path + ".log", encoding: .utf8)) ?? ""
                daemon.stop(timeout: .seconds(2))
                rmdir(path)
                unlink(path + ".log")
                throw POSIXError(.EIO, userInfo: [NSLocalizedDescriptionKey: "the FUSE level did not mount at \(path): \(log)"])
            }
            usleep(20_000)
        }
    }

    deinit { remove() }

    /// Every access to the level waits from now on.
    public func hang() { daemon.signal(SIGSTOP) }

    /// The level answers again (the accesses that waited go on).
    public func answer() { daemon.signal(SIGCONT) }

    public func remove() {
        guard mounted else { return }
        mounted = false
        answer()
        _ = try? ProcessRunner.run(URL(fileURLWithPath: "/bin/umount"), ["-l", path])
        daemon.stop(timeout: .seconds(5))
        // rmdir only: never recurse into what may still be the served directory.
        rmdir(path)
        unlink(path + ".log")
    }

    private static func isMounted(_ path: String) -> Bool {
        let mounts = (try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)) ?? ""
        return mounts.split(separator: "\n").contains { $0.split(separator: " ").dropFirst().first.map(String.init) == path }
    }
}
