import RelocatorCore
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// A level directory as the system sees it.
public struct ResolvedLevel: Equatable, Sendable {
    public var name: String
    /// As configured.
    public var directory: String
    /// After `realpath`: no link, no `//`, no trailing slash.
    public var realPath: String
    public var device: UInt64
    public var inode: UInt64
    /// The device and inode of every directory above it, up to `/`: a level inside another is
    /// found by these, also through a bind mount.
    public var above: [DirectoryIdentity] = []

    public var identity: DirectoryIdentity { DirectoryIdentity(device: device, inode: inode) }
}

/// A directory's device and inode.
public struct DirectoryIdentity: Hashable, Sendable {
    public var device: UInt64
    public var inode: UInt64
}

/// Checks `RELOCATOR_LEVELS` before anything moves: every level directory exists and is a
/// directory, and no two levels are the same directory or one inside another — by path after
/// `realpath` and by device and inode (a bind mount shows one directory under two paths). Two
/// level names for one directory would make a move find "source and destination both present and
/// identical" and remove the only copy. Throws a `ConfigurationError` whose description is one
/// line naming the levels, e.g.
/// `RELOCATOR_LEVELS: levels 'gold' and 'silver' are the same directory (/d/ssd)`.
public func verifyLevelLayout(_ directories: LevelDirectories, setting: String = "RELOCATOR_LEVELS") throws -> [ResolvedLevel] {
    let levels = try directories.names.map { try resolveLevel($0, directory: directories.directory(of: $0)!, setting: setting) }
    try checkLevelLayout(levels, setting: setting)
    return levels
}

/// One level directory as the system sees it (`realpath`, its device and inode, and those of the
/// directories above it): the only step of `verifyLevelLayout` that looks at the disks.
public func resolveLevel(_ name: String, directory: String, setting: String = "RELOCATOR_LEVELS") throws -> ResolvedLevel {
    guard let real = realpath(directory, nil) else {
        let error = Errno(rawValue: errno)
        if error == .noSuchFileOrDirectory {
            throw ConfigurationError(setting: setting, expected: "level '\(name)' (\(directory)): no such directory")
        }
        throw ConfigurationError(setting: setting, expected: "level '\(name)' (\(directory)): \(error) (\(Linux.errorName(error)))")
    }
    let realPath = String(cString: real)
    free(real)
    let status: Stat
    do {
        status = try Stat(FilePath(realPath))
    } catch {
        throw ConfigurationError(setting: setting, expected: "level '\(name)' (\(directory)): \(error) (\(Linux.errorName(error)))")
    }
    guard status.isDirectory else {
        throw ConfigurationError(setting: setting, expected: "level '\(name)' (\(directory)) is \(status.typeDescription), not a directory")
    }
    let identity = FileIdentity(status)
    var level = ResolvedLevel(name: name, directory: directory, realPath: realPath, device: identity.device, inode: identity.inode)
    // Every directory above this level, by device and inode, so a bind mount cannot hide it.
    var path = realPath
    while path != "/" {
        path = parentPath(of: path)
        do {
            let above = FileIdentity(try Stat(FilePath(path)))
            level.above.append(DirectoryIdentity(device: above.device, inode: above.inode))
        } catch {
            throw ConfigurationError(setting: setting, expected: "level '\(name)' (\(directory)): cannot stat \(path): \(error) (\(Linux.errorName(error)))")
        }
    }
    return level
}

/// Refuses two levels that are one directory, or one inside another (`verifyLevelLayout`), from
/// what `resolveLevel` found: no disk is looked at.
public func checkLevelLayout(_ levels: [ResolvedLevel], setting: String = "RELOCATOR_LEVELS") throws {
    for (index, level) in levels.enumerated() {
        for other in levels[..<index] where other.identity == level.identity {
            let paths = other.realPath == level.realPath ? other.realPath : "\(other.realPath) and \(level.realPath)"
            throw ConfigurationError(setting: setting, expected: "levels '\(other.name)' and '\(level.name)' are the same directory (\(paths))")
        }
    }
    for level in levels {
        for above in level.above {
            if let outer = levels.first(where: { $0.identity == above }) {
                throw ConfigurationError(setting: setting, expected: "level '\(level.name)' (\(level.realPath)) lies inside '\(outer.name)' (\(outer.realPath))")
            }
        }
    }
}

/// The parent of an absolute path without a trailing slash (`/` for `/a`), cut at its last `/`
/// byte (as characters, a `/` before a combining mark is no `/`).
private func parentPath(of path: String) -> String {
    guard let slash = path.unicodeScalars.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
    return String(path.unicodeScalars[..<slash])
}

/// The levels whose directory does not answer within `patience` (a hard NFS mount whose server
/// is gone, a stalled device, a FUSE daemon stopped), with why: a worker starts without opening
/// them and opens them once they answer; the API starts without checking them. A directory is
/// asked what a worker's start asks of it — opened, and its reserved directory looked up — each
/// on a thread of its own. Whatever it answers (no such directory…), a directory that answered
/// is left to the checks that follow.
public func levelsNotAnswering(_ directories: LevelDirectories, within patience: Duration) -> [String: String] {
    let paths = directories.names.map { directories.directory(of: $0)! }
    let answered = BlockingExecutor.each(paths, named: "look-at-level", within: patience) { path in
        let directory = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directory >= 0 else { return }
        let reserved = openat(directory, ReservedDirectory.name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if reserved >= 0 { close(reserved) }
        close(directory)
    }
    var silent: [String: String] = [:]
    for (index, level) in directories.names.enumerated() where !answered.contains(index) {
        silent[level] = "its directory \(paths[index]) did not answer within \(patience) at the start "
            + "(a stalled disk, or a network filesystem whose server is gone)"
    }
    return silent
}

/// `verifyLevelLayout` of the levels whose directory answers within `patience`, for a process
/// that must not wait on a disk that does not (the API, a one-shot command): returns the others,
/// with why (`levelsNotAnswering`), left out of the check.
public func verifyAnsweringLevelLayout(_ directories: LevelDirectories, setting: String, within patience: Duration) throws -> [String: String] {
    let silent = levelsNotAnswering(directories, within: patience)
    _ = try verifyLevelLayout(directories.filter { silent[$0] == nil }, setting: setting)
    return silent
}

/// The levels whose directory this host has, and those it has not (no such path: the level lives
/// on other hosts, whose workers serve its files). Only a missing path counts as absent: a path
/// that exists but cannot be looked at, or is not a directory, is left for `verifyLevelLayout`
/// to refuse, and a bare mountpoint is present (a level taken out of service is checked later).
public func levelsOnThisHost(_ directories: LevelDirectories) -> (present: LevelDirectories, absent: [String]) {
    var present: [(String, String)] = []
    var absent: [String] = []
    for name in directories.names {
        let directory = directories.directory(of: name)!
        var status = stat()
        if stat(directory, &status) != 0 && errno == ENOENT {
            absent.append(name)
        } else {
            present.append((name, directory))
        }
    }
    return (LevelDirectories(present), absent)
}
