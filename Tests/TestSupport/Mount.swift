import Foundation
import RelocatorCore

/// A small tmpfs mounted for one test: a second filesystem (cross-device moves), a full disk
/// (`sizeKiB`), or a read-only one. Unmounted and removed by `remove()`.
public final class TmpfsMount: @unchecked Sendable {
    public let path: String
    private var mounted = false

    /// `ramfs`: a ramfs instead (no size limit; a file system other than the ones whose times a
    /// served hash relies on).
    public init(sizeKiB: Int = 64 * 1024, readOnly: Bool = false, ramfs: Bool = false) throws {
        path = try TemporaryDirectory("relocator-tmpfs").path
        let options = (ramfs ? "" : "size=\(sizeKiB)k,") + "mode=0755" + (readOnly ? ",ro" : "")
        try Self.run("/bin/mount", ["-t", ramfs ? "ramfs" : "tmpfs", "-o", options, ramfs ? "ramfs" : "tmpfs", path])
        mounted = true
    }

    deinit { remove() }

    public func remount(readOnly: Bool) throws {
        try Self.run("/bin/mount", ["-o", "remount," + (readOnly ? "ro" : "rw"), path])
    }

    public func remove() {
        if mounted {
            _ = try? Self.run("/bin/umount", ["-l", path])
            mounted = false
        }
        try? FileManager.default.removeItem(atPath: path)
    }

    private static func run(_ tool: String, _ arguments: [String]) throws {
        let result = try ProcessRunner.run(URL(fileURLWithPath: tool), arguments)
        guard result.status == 0 else {
            throw POSIXError(.EPERM, userInfo: [NSLocalizedDescriptionKey: "\(tool) \(arguments.joined(separator: " ")): \(result.stderr)"])
        }
    }
}

/// A small ext4 filesystem in an image file, loop-mounted for one test: unlike tmpfs it reserves
/// blocks for root (`reservedPercent`), so `df`'s Used / Size differs from its Use%. Unmounted,
/// its loop device freed and its image removed by `remove()`, even when the mount failed half-way.
public final class Ext4LoopMount: @unchecked Sendable {
    public let path: String
    private let directory: TemporaryDirectory
    private var mounted = false

    public init(sizeMiB: Int = 32, reservedPercent: Int = 10) throws {
        directory = try TemporaryDirectory("relocator-ext4")
        path = directory.path + "/mnt"
        let image = directory.path + "/image"
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            try Self.run("/usr/bin/truncate", ["-s", "\(sizeMiB)M", image])
            try Self.run("/usr/sbin/mkfs.ext4", ["-q", "-F", "-m", String(reservedPercent), image])
            // `-o loop` sets autoclear: the loop device goes with the unmount.
            try Self.run("/bin/mount", ["-t", "ext4", "-o", "loop", image, path])
            mounted = true
        } catch {
            remove()
            throw error
        }
    }

    deinit { remove() }

    public func remove() {
        if mounted {
            // A plain unmount frees the loop device at once; a busy one is detached lazily, and
            // either is checked against the mount table.
            if (try? Self.run("/bin/umount", [path])) == nil || Self.isMounted(path) { _ = try? Self.run("/bin/umount", ["-l", path]) }
            mounted = Self.isMounted(path)
        }
        if !mounted { directory.remove() }
    }

    /// Whether `/proc/self/mounts` lists `path` as a mount point.
    static func isMounted(_ path: String) -> Bool {
        let table = (try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)) ?? ""
        return table.split(separator: "\n").contains { $0.split(separator: " ").dropFirst().first.map(String.init) == path }
    }

    private static func run(_ tool: String, _ arguments: [String]) throws {
        let result = try ProcessRunner.run(URL(fileURLWithPath: tool), arguments)
        guard result.status == 0 else {
            throw POSIXError(.EPERM, userInfo: [NSLocalizedDescriptionKey: "\(tool) \(arguments.joined(separator: " ")): \(result.stderr)"])
        }
    }
}

/// Files for tests: made with random bytes, hashed with coreutils (independent of the code under test).
public enum TestFiles {
    @discardableResult
    public static func make(_ path: String, bytes: Int, mode: mode_t = 0o640, mtime: Date? = Date(timeIntervalSince1970: 1_600_000_000)) throws -> String {
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        var generator = SystemRandomNumberGenerator()
        var data = Data(count: bytes)
        data.withUnsafeMutableBytes { raw in
            var offset = 0
            while offset < bytes {
                var word = generator.next()
                let n = min(8, bytes - offset)
                withUnsafeBytes(of: &word) { raw.baseAddress!.advanced(by: offset).copyMemory(from: $0.baseAddress!, byteCount: n) }
                offset += n
            }
        }
        try data.write(to: url)
        chmod(path, mode)
        if let mtime {
            try FileManager.default.setAttributes([.modificationDate: mtime], ofItemAtPath: path)
        }
        return try sha256(path)
    }

    /// `sha256sum` of a file.
    public static func sha256(_ path: String) throws -> String {
        let result = try ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/sha256sum"), [path])
        guard result.status == 0, let sum = result.stdout.split(separator: " ").first else {
            throw POSIXError(.EIO, userInfo: [NSLocalizedDescriptionKey: "sha256sum \(path): \(result.stderr)"])
        }
        return String(sum)
    }

    /// The checksum a worker records for the file: `xxh128:<hex>` as `xxhsum -H2` (Debian's xxhash)
    /// computes it.
    public static func recordedChecksum(_ path: String) throws -> String {
        let result = try ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/xxhsum"), ["-H2", path])
        guard result.status == 0, let sum = result.stdout.split(separator: " ").first else {
            throw POSIXError(.EIO, userInfo: [NSLocalizedDescriptionKey: "xxhsum \(path): \(result.stderr)"])
        }
        return "xxh128:" + sum
    }

    public static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    public static func mode(_ path: String) -> mode_t {
        var info = stat()
        stat(path, &info)
        return info.st_mode & 0o7777
    }

    public static func mtime(_ path: String) -> Int {
        var info = stat()
        stat(path, &info)
        return info.st_mtim.tv_sec
    }

    /// What a level directory holds besides its reserved directory, plus the temporary files in
    /// that directory's `tmp/` (as `.relocator/tmp/<name>`): empty when a move left nothing behind.
    public static func levelContents(_ directory: String) throws -> [String] {
        var found = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0 != ReservedDirectory.name }
        let temporary = directory + "/" + ReservedDirectory.temporaryPath
        if FileManager.default.fileExists(atPath: temporary) {
            found += try FileManager.default.contentsOfDirectory(atPath: temporary).map { ReservedDirectory.temporaryPath + "/" + $0 }
        }
        return found.sorted()
    }

    /// Makes the reserved directory of a level, as a worker finds it after its first move (tests
    /// that count the directories a move fsyncs start from there).
    public static func makeReservedDirectory(in level: String) throws {
        try FileManager.default.createDirectory(atPath: level + "/" + ReservedDirectory.temporaryPath, withIntermediateDirectories: true)
    }

    /// Every file under a directory whose name ends in `.part`.
    public static func partFiles(under directory: String) -> [String] {
        let enumerator = FileManager.default.enumerator(atPath: directory)
        var found: [String] = []
        while let item = enumerator?.nextObject() as? String {
            if item.hasSuffix(".part") { found.append(item) }
        }
        return found
    }
}
