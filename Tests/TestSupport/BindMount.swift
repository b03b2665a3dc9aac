import Foundation

/// `mount --bind` of a directory onto a new one for one test: the same directory under a second
/// path. Unmounted and removed by `remove()`.
public final class BindMount: @unchecked Sendable {
    public let path: String
    private var mounted = false

    public init(of directory: String) throws {
        path = try TemporaryDirectory("relocator-bind").path
        let result = try ProcessRunner.run(URL(fileURLWithPath: "/bin/mount"), ["--bind", directory, path])
        guard result.status == 0 else {
            rmdir(path)
            throw POSIXError(.EPERM, userInfo: [NSLocalizedDescriptionKey: "mount --bind \(directory) \(path): \(result.stderr)"])
        }
        mounted = true
    }

    deinit { remove() }

    public func remove() {
        if mounted {
            _ = try? ProcessRunner.run(URL(fileURLWithPath: "/bin/umount"), ["-l", path])
            mounted = false
        }
        // rmdir only: never recurse into what may still be the bound directory.
        rmdir(path)
    }
}
