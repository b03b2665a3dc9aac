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
}

/// Checks `RELOCATOR_LEVELS` before anything moves: every level directory exists and is a
/// directory, and no two levels are the same directory or one inside another — by path after
/// `realpath` and by device and inode (a bind mount shows one directory under two paths). Two
/// level names for one directory would make a move find "source and destination both present and
/// identical" and remove the only copy. Throws a `ConfigurationError` whose description is one
/// line naming the levels, e.g.
/// `RELOCATOR_LEVELS: levels 'gold' and 'silver' are the same directory (/d/ssd)`.
public func verifyLevelLayout(_ directories: LevelDirectories, setting: String = "RELOCATOR_LEVELS") throws -> [ResolvedLevel] {
    var levels: [ResolvedLevel] = []
    for name in directories.names {
        let directory = directories.directory(of: name)!
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
        levels.append(ResolvedLevel(name: name, directory: directory, realPath: realPath, device: identity.device, inode: identity.inode))
    }

    for (index, level) in levels.enumerated() {
        for other in levels[..<index] where other.device == level.device && other.inode == level.inode {
            let paths = other.realPath == level.realPath ? other.realPath : "\(other.realPath) and \(level.realPath)"
            throw ConfigurationError(setting: setting, expected: "levels '\(other.name)' and '\(level.name)' are the same directory (\(paths))")
        }
    }
    for level in levels {
        // Every directory above this level, by device and inode, so a bind mount cannot hide it.
        var path = level.realPath
        while path != "/" {
            path = parentPath(of: path)
            let identity: FileIdentity
            do {
                identity = FileIdentity(try Stat(FilePath(path)))
            } catch {
                throw ConfigurationError(setting: setting, expected: "level '\(level.name)' (\(level.directory)): cannot stat \(path): \(error) (\(Linux.errorName(error)))")
            }
            if let outer = levels.first(where: { $0.device == identity.device && $0.inode == identity.inode }) {
                throw ConfigurationError(setting: setting, expected: "level '\(level.name)' (\(level.realPath)) lies inside '\(outer.name)' (\(outer.realPath))")
            }
        }
    }
    return levels
}

/// The parent of an absolute path without a trailing slash (`/` for `/a`), cut at its last `/`
/// byte (as characters, a `/` before a combining mark is no `/`).
private func parentPath(of path: String) -> String {
    guard let slash = path.unicodeScalars.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
    return String(path.unicodeScalars[..<slash])
}

/// The levels whose directory does not answer within `patience` (a hard NFS mount whose server
/// is gone, a stalled device, a FUSE daemon stopped), with why: a worker starts without opening
/// them and opens them once they answer. A directory is asked what a worker's start asks of it —
/// opened, and its reserved directory looked up — each on a thread of its own. Whatever it
/// answers (no such directory…), a directory that answered is left to the checks that follow.
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
        silent[level] = "its directory \(paths[index]) did not answer within \(patience) when the worker started "
            + "(a stalled disk, or a network filesystem whose server is gone); it is opened once it answers"
    }
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
