import RelocatorCore
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// The directory Relocator reserves in a level (`.relocator/`: the content lock file and the
/// temporary files of copies), reached beneath the level like any name, never through a link.
extension LevelRoot {
    /// `.relocator/` (and its `tmp/`), created durably when missing — never in a withdrawn level.
    func reservedDirectory() throws -> Descriptor {
        try requireNotWithdrawn()
        let reserved = try openOrMake(ReservedDirectory.name, in: rootDirectory(), display: display(ReservedDirectory.name))
        if !reservedMade.load(ordering: .relaxed) {
            _ = try openOrMake(ReservedDirectory.temporary, in: reserved, display: display(ReservedDirectory.temporaryPath))
            reservedMade.store(true, ordering: .relaxed)
        }
        return reserved
    }

    /// True when the level directory holds `.relocator/` (a directory; never through a link).
    public func hasReservedDirectory() throws -> Bool {
        try open(ReservedDirectory.name, in: rootDirectory(), display: display(ReservedDirectory.name)) != nil
    }

    /// Creates `.relocator/` and its `tmp/` durably when missing (`LevelReadiness.initialise`,
    /// `relocator levels init`); a withdrawn level is back in service after it.
    public func initialise() throws {
        withdraw(because: nil)
        _ = try reservedDirectory()
    }

    /// `.relocator/tmp/`, created durably when missing.
    func temporaryDirectory() throws -> Descriptor {
        try openOrMake(ReservedDirectory.temporary, in: reservedDirectory(), display: display(ReservedDirectory.temporaryPath))
    }

    /// `.relocator/tmp/`, nil when it does not exist.
    func existingTemporaryDirectory() throws -> Descriptor? {
        guard let reserved = try open(ReservedDirectory.name, in: rootDirectory(), display: display(ReservedDirectory.name)) else { return nil }
        return try open(ReservedDirectory.temporary, in: reserved, display: display(ReservedDirectory.temporaryPath))
    }

    /// The lock file, opened for writing (an OFD write lock needs it): a new open file
    /// description on every call, so that every delivery — also two in one process — holds its own.
    func openLockFile() throws -> FileDescriptor {
        let reserved = try reservedDirectory()
        let path = ReservedDirectory.name + "/" + ReservedDirectory.lockFile
        switch Linux.openAt(reserved.fd, ReservedDirectory.lockFile, flags: O_RDWR | O_CREAT | O_NOFOLLOW, mode: 0o600) {
        case .success(let fd): return fd
        case .failure(.tooManySymbolicLinkLevels): throw MoveError.symbolicLink(display(path))
        case .failure(let error): throw MoveError.system("cannot open the lock file", display(path), error)
        }
    }

    /// The size of this job's temporary file in the level, nil when there is none.
    public func temporarySize(cid: Int64, gen: Int64) throws -> Int64? {
        guard let directory = try existingTemporaryDirectory() else { return nil }
        switch Linux.status(of: PartName(cid: cid, gen: gen).fileName, in: directory.fd) {
        case .success(let status?) where status.isRegularFile: return status.size
        case .success: return nil
        case .failure(let error): throw MoveError.system("cannot stat", display(PartName(cid: cid, gen: gen).relativePath), error)
        }
    }

    /// The temporary files in `.relocator/tmp/` (regular files named by `PartName`), by cid and
    /// generation; names that are not `PartName`s are left out (and never removed).
    public func temporaryFiles() throws -> [(name: PartName, modified: Int64)] {
        guard let directory = try existingTemporaryDirectory() else { return [] }
        var found: [(PartName, Int64)] = []
        for (name, type) in try entries(of: directory) where type == .regular {
            guard let part = PartName(parsing: name), case .success(let status?) = Linux.status(of: name, in: directory.fd),
                  status.isRegularFile else { continue }
            found.append((part, Int64(status.st_mtim.tv_sec)))
        }
        return found.sorted { ($0.0.cid, $0.0.gen) < ($1.0.cid, $1.0.gen) }
    }

    /// Removes a temporary file of `.relocator/tmp/`, which the caller may remove: it holds the
    /// content's lock (no delivery of that content is under way here). False when it was gone.
    @discardableResult
    public func removeTemporary(_ part: PartName, holding lock: ContentLock) throws -> Bool {
        precondition(lock.cid == part.cid, "the lock of another content")
        guard let directory = try existingTemporaryDirectory() else { return false }
        switch Linux.status(of: part.fileName, in: directory.fd) {
        case .success(let status?) where status.isRegularFile: break
        case .success: return false
        case .failure(let error): throw MoveError.system("cannot stat", display(part.relativePath), error)
        }
        switch Linux.unlink(directory.fd, part.fileName) {
        case .success: return true
        case .failure(.noSuchFileOrDirectory): return false
        case .failure(let error): throw MoveError.system("cannot remove", display(part.relativePath), error)
        }
    }

    private func open(_ name: String, in parent: Descriptor, display: String) throws -> Descriptor? {
        switch Linux.openAt(parent.fd, name, flags: O_RDONLY | O_DIRECTORY | O_NOFOLLOW) {
        case .success(let fd): return Descriptor(fd, display: display)
        case .failure(.noSuchFileOrDirectory): return nil
        case .failure(.tooManySymbolicLinkLevels): throw MoveError.symbolicLink(display)
        case .failure(.notDirectory):
            if case .success(let status?) = Linux.status(of: name, in: parent.fd), status.isSymbolicLink { throw MoveError.symbolicLink(display) }
            throw MoveError(.ioError, "\(display) is not a directory: Relocator reserves that name in each level; move the file away")
        case .failure(let error): throw MoveError.system("cannot open the directory", display, error)
        }
    }

    /// A directory of `.relocator/`, created durably when missing.
    func openOrMakeReserved(_ name: String, in reserved: Descriptor) throws -> Descriptor {
        try openOrMake(name, in: reserved, display: display(ReservedDirectory.name + "/" + name))
    }

    private func openOrMake(_ name: String, in parent: Descriptor, display: String) throws -> Descriptor {
        for _ in 0..<3 {
            if let opened = try open(name, in: parent, display: display) { return opened }
            switch Linux.makeDirectory(parent.fd, name, mode: 0o700) {
            case .success:
                // The new directory's name is durable before anything goes inside.
                try sync(parent)
            case .failure(.fileExists):
                break  // made meanwhile by another process: open it
            case .failure(let error):
                throw MoveError.system("cannot create the directory", display, error)
            }
        }
        throw MoveError(.ioError, "\(display) keeps changing while it is looked up")
    }
}

/// One content's lock on this host: an OFD write lock (`fcntl(F_OFD_SETLK)`) on byte `cid` of
/// `.relocator/lock` in each of its levels, taken in level-name order without waiting. Every
/// Relocator process that changes a content's names in a level — a move, `reconcile --fix`, the
/// sweep of temporary files — holds it first, so none acts while another delivery of the same
/// content is between its checks and its removal. The kernel releases it when the holder's
/// descriptors close, also when the process is killed; a paused process keeps it.
public final class ContentLock: @unchecked Sendable {
    public let cid: Int64
    private var descriptors: [FileDescriptor] = []

    /// `fcntl.h` (GNU): not in Swift's Glibc module.
    static let setOFDLock: Int32 = 37

    private init(cid: Int64) {
        self.cid = cid
    }

    deinit { release() }

    /// The lock in every level of `roots`; nil (holding none) when another holder has it in any.
    /// Two level names for one directory share one lock file, locked once.
    public static func tryLock(cid: Int64, in roots: [LevelRoot]) throws -> ContentLock? {
        try tryLock(cid: cid, in: roots) { root in try lockOne(cid: cid, in: root) }
    }

    /// `tryLock`, each level's lock taken by `take` — `lockOne`, or a caller's bounded wrapping of
    /// it —: nil (holding none) when `take` gives none for a level.
    public static func tryLock(cid: Int64, in roots: [LevelRoot], taking take: (LevelRoot) throws -> FileDescriptor?) throws -> ContentLock? {
        let lock = ContentLock(cid: cid)
        var locked: Set<[UInt64]> = []
        for root in roots.sorted(by: { $0.level < $1.level }) where locked.insert([root.device, root.inode]).inserted {
            let taken: FileDescriptor?
            do {
                taken = try take(root)
            } catch {
                lock.release()
                throw error
            }
            guard let taken else {
                lock.release()
                return nil
            }
            lock.descriptors.append(taken)
        }
        return lock
    }

    /// Content `cid`'s lock in `root` alone: the descriptor that holds it (closing it releases it),
    /// nil when another holder has it.
    public static func lockOne(cid: Int64, in root: LevelRoot) throws -> FileDescriptor? {
        let fd = try root.openLockFile()
        var request = flock()
        request.l_type = Int16(F_WRLCK)
        request.l_whence = Int16(SEEK_SET)
        // Any cid names a byte: the sign bit is dropped (two cids sharing a byte only lock more).
        request.l_start = off_t(cid & Int64.max)
        request.l_len = 1
        request.l_pid = 0
        let result = Linux.call { fcntl(fd.rawValue, setOFDLock, &request) }
        if case .failure(let error) = result {
            _ = Glibc.close(fd.rawValue)
            if error == .resourceTemporarilyUnavailable || error == .permissionDenied { return nil }
            throw MoveError.system("cannot lock content \(cid) in", root.display(ReservedDirectory.name + "/" + ReservedDirectory.lockFile), error)
        }
        return fd
    }

    /// Releases it in every level (closing the descriptors).
    public func release() {
        for fd in descriptors { _ = Glibc.close(fd.rawValue) }
        descriptors = []
    }
}
