import Foundation
import RelocatorCore
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// What `relocator reconcile` does on a level's disk, with the same safe resolution as the mover.
extension LevelRoot {
    /// A file found under an earlier version's temporary name (`LegacyPartName`).
    public struct LegacyPart: Equatable, Sendable {
        /// Relative to the level directory: `movies/.a.mp4.relocator-7-3.part`.
        public var relativePath: String
        public var name: LegacyPartName
        /// Seconds since 1970.
        public var modified: Int64
    }

    /// Every regular file under the level directory whose name is a `LegacyPartName`, outside the
    /// reserved directory. Symbolic links are never followed (a linked directory is not entered).
    public func legacyParts() throws -> [LegacyPart] {
        let walk = LegacyPartWalk(self)
        while try walk.step() {}
        return walk.parts
    }

    /// The walk of `legacyParts`, a directory at a time (`step`), for a caller that waits for each
    /// directory at most a patience (a disk that stops answering halfway).
    public func legacyPartWalk() -> LegacyPartWalk { LegacyPartWalk(self) }

    /// Moves a file found under an earlier version's temporary name into `.relocator/orphans/` (its
    /// relative path as the name, `/` written `%2F`), never replacing anything, and fsyncs both
    /// directories: nothing is deleted for what its name looks like. The caller holds the
    /// content's lock. Returns where it went (relative to the level), nil when it was gone.
    public func moveAside(_ part: LegacyPart, holding lock: ContentLock) throws -> String? {
        precondition(lock.cid == part.name.cid, "the lock of another content")
        let components = Filename.components(of: part.relativePath)
        let directoryPath = components.dropLast().joined(separator: "/")
        guard let directory = try openDirectory(Array(components.dropLast()), create: false) else { return nil }
        let entry = Entry(root: self, directory: directory, directoryPath: directoryPath, name: String(components.last!))
        guard let status = try entry.status() else { return nil }
        if status.isSymbolicLink { throw MoveError.symbolicLink(entry.display) }
        guard status.isRegularFile else { throw MoveError(.notRegularFile, "\(entry.display) is \(status.typeDescription); left alone") }
        let reserved = try reservedDirectory()
        let orphans = try openOrMakeReserved(ReservedDirectory.orphans, in: reserved)
        // (Escaped scalar by scalar: every `/` byte, whatever character it is part of.)
        var name = ""
        for scalar in part.relativePath.unicodeScalars {
            switch scalar {
            case "%": name += "%25"
            case "/": name += "%2F"
            default: name.unicodeScalars.append(scalar)
            }
        }
        if Mutant.legacyPartDeleted.isActive {
            _ = Linux.unlink(directory.fd, entry.name)
            return ReservedDirectory.name + "/" + ReservedDirectory.orphans + "/" + name
        }
        switch Linux.renameNoReplace(directory.fd, entry.name, to: orphans.fd, name) {
        case .success: break
        case .failure(.noSuchFileOrDirectory): return nil
        case .failure(let error): throw MoveError.system("cannot move \(entry.display) to", display(ReservedDirectory.name + "/" + ReservedDirectory.orphans + "/" + name), error)
        }
        try sync(orphans)
        try sync(directory)
        return ReservedDirectory.name + "/" + ReservedDirectory.orphans + "/" + name
    }

    /// The checksum of `filename` here; nil when there is no such file.
    public func checksum(of filename: Filename, algorithm: ChecksumAlgorithm, chunkSize: Int = 1 << 20) throws -> Checksum? {
        guard let entry = try entry(filename, create: false), let source = try entry.openRegularFile() else { return nil }
        return try source.file.hash(algorithm, buffers: ChunkBuffers(chunkSize: chunkSize)).0
    }

    /// Removes this level's copy of `filename` when `keeper` holds the same bytes, checking both
    /// right before the unlink: both are hashed, this copy must be unchanged since it was hashed
    /// and its name must still be that file. Never removes the only copy: not when the two levels
    /// are one directory, nor when `keeper` has no such file. Returns the checksum.
    @discardableResult
    public func removeDuplicate(_ filename: Filename, keeping keeper: LevelRoot, algorithm: ChecksumAlgorithm,
                                chunkSize: Int = 1 << 20) throws -> Checksum {
        guard let entry = try entry(filename, create: false), let copy = try entry.openRegularFile() else {
            throw MoveError(.sourceMissing, "\(display(filename.value)) is not there; nothing removed")
        }
        guard let keptEntry = try keeper.entry(filename, create: false), let kept = try keptEntry.openRegularFile() else {
            throw MoveError(.sourceMissing, "\(keeper.display(filename.value)) is not there; \(copy.entry.display) is kept")
        }
        try refuseSameDirectory(copy.entry, keptEntry)
        let buffers = ChunkBuffers(chunkSize: chunkSize)
        let (sum, _) = try copy.file.hash(algorithm, buffers: buffers)
        if copy.identity.isSameFile(as: kept.identity) {
            // One file reached by both names: removing this one must leave it at the keeper's.
            guard try copy.file.stat().linkCount >= 2 else {
                throw MoveError(.unsafePath, "\(copy.entry.display) and \(keptEntry.display) are one file with one name; nothing removed")
            }
        } else {
            let (keptSum, _) = try kept.file.hash(algorithm, buffers: buffers)
            guard keptSum == sum else {
                throw MoveError(.destinationConflict, "\(copy.entry.display) and \(keptEntry.display) differ; both left untouched")
            }
        }
        try copy.requireUnchanged()
        guard try keptEntry.names(kept.identity) else {
            throw MoveError(.sourceChanged, "\(keptEntry.display) was replaced while it was compared; nothing removed")
        }
        // Both levels still the directories opened (a disk unmounted or swapped meanwhile: the copy
        // kept would be on a disk no longer at its level's path).
        try keeper.requireInPlace()
        try requireInPlace()
        try entry.remove()
        return sum
    }

    /// Refuses two entries that are one: the same name in the same directory (two levels that are
    /// one directory, reached by two paths).
    func refuseSameDirectory(_ a: Entry, _ b: Entry) throws {
        guard a.name == b.name, FileIdentity(try a.directory.stat()).isSameFile(as: FileIdentity(try b.directory.stat())) else { return }
        throw MoveError(.unsafePath, "\(a.display) and \(b.display) are the same file: levels '\(a.root.level)' (\(a.root.directory)) and '\(b.root.level)' (\(b.root.directory)) are one directory; nothing removed")
    }

    /// The names in a directory with their types (`.` and `..` left out).
    func entries(of directory: Descriptor) throws -> [(String, FileType)] {
        // A listing moves the offset of the open file description: a borrowed one is shared.
        precondition(!directory.isBorrowed, "a listing needs a directory opened for it (reopenRoot)")
        // fdopendir takes the descriptor over: give it a duplicate.
        let copy: FileDescriptor
        do { copy = try directory.fd.duplicate() } catch { throw MoveError.system("cannot list", directory.display, error) }
        guard let stream = fdopendir(copy.rawValue) else {
            let error = Errno(rawValue: errno)
            _ = Glibc.close(copy.rawValue)
            throw MoveError.system("cannot list", directory.display, error)
        }
        defer { closedir(stream) }
        var result: [(String, FileType)] = []
        while true {
            errno = 0
            guard let item = readdir(stream) else {
                if errno != 0 { throw MoveError.system("cannot list", directory.display, Errno(rawValue: errno)) }
                break
            }
            let name = withUnsafeBytes(of: item.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            var type: FileType
            switch Int32(item.pointee.d_type) {
            case Int32(DT_DIR): type = .directory
            case Int32(DT_REG): type = .regular
            case Int32(DT_LNK): type = .symbolicLink
            default:
                // DT_UNKNOWN on some filesystems: ask.
                switch Linux.status(of: name, in: directory.fd) {
                case .success(let status?): type = status.type
                case .success(nil): continue
                case .failure(let error): throw MoveError.system("cannot stat", display(name), error)
                }
            }
            result.append((name, type))
        }
        return result
    }
}

/// The walk of a level for files under an earlier version's temporary name, a directory at a
/// time: the directories still to list are each opened only when their turn comes (what stays
/// open is the directories on the way down that still have some to list). Used by one thread at a
/// time (a level's queue of looks: unchecked).
public final class LegacyPartWalk: @unchecked Sendable {
    private let root: LevelRoot
    private var pending: [(parent: Descriptor?, relative: String)] = [(nil, "")]
    private var found: [LevelRoot.LegacyPart] = []

    init(_ root: LevelRoot) {
        self.root = root
    }

    /// What was found, by path.
    public var parts: [LevelRoot.LegacyPart] { found.sorted { $0.relativePath < $1.relativePath } }

    /// Lists the next directory: false once none is left.
    public func step() throws -> Bool {
        guard let (parent, relative) = pending.popLast() else { return false }
        let directory: Descriptor
        if let parent {
            let name = String(Filename.components(of: relative).last!)
            switch Linux.openAt(parent.fd, name, flags: O_RDONLY | O_DIRECTORY | O_NOFOLLOW) {
            case .success(let fd): directory = Descriptor(fd, display: root.display(relative))
            // Removed, or swapped for a link, since it was listed: not ours to enter.
            case .failure(.noSuchFileOrDirectory), .failure(.tooManySymbolicLinkLevels), .failure(.notDirectory): return true
            case .failure(let error): throw MoveError.system("cannot open the directory", root.display(relative), error)
            }
        } else {
            directory = try root.reopenRoot()
        }
        for (name, type) in try root.entries(of: directory) {
            let child = relative.isEmpty ? name : relative + "/" + name
            if type == .directory {
                if relative.isEmpty && name == ReservedDirectory.name { continue }
                pending.append((directory, child))
            } else if type == .regular, let part = LegacyPartName(parsing: name),
                      case .success(let status?) = Linux.status(of: name, in: directory.fd), status.isRegularFile {
                found.append(LevelRoot.LegacyPart(relativePath: child, name: part, modified: Int64(status.st_mtim.tv_sec)))
            }
        }
        return true
    }
}
