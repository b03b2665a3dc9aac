import Foundation

/// `mount --bind` of a directory onto a new one for one test: the same directory under a second
/// path. Unmounted and removed by `remove()`.
public final class BindMount: @unchecked Sendable {
    public let path: String
    private var mounted = false

    private let source: String

    public init(of directory: String) throws {
        path = try TemporaryDirectory("relocator-bind").path
        source = directory
        do {
            try attach()
        } catch {
            rmdir(path)
            throw error
        }
    }

    /// Mounts the directory (again) at `path`.
    public func attach() throws {
        let result = try ProcessRunner.run(URL(fileURLWithPath: "/bin/mount"), ["--bind", source, path])
        guard result.status == 0 else {
            throw POSIXError(.EPERM, userInfo: [NSLocalizedDescriptionKey: "mount --bind \(source) \(path): \(result.stderr)"])
        }
        mounted = true
    }

    /// Unmounts it (lazily, as an operator's `umount -l` under running processes): `path` is the
    /// bare mountpoint again.
    public func detach() throws {
        let result = try ProcessRunner.run(URL(fileURLWithPath: "/bin/umount"), ["-l", path])
        guard result.status == 0 else {
            throw POSIXError(.EIO, userInfo: [NSLocalizedDescriptionKey: "umount -l \(path): \(result.stderr)"])
        }
        mounted = false
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
