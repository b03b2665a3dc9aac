import RelocatorCore
import Synchronization
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// An open descriptor of a level directory: the one place where a filename becomes a file.
///
/// Every filename is resolved beneath the level directory, component by component, and a symbolic
/// link anywhere on its way (or at its end) is refused with `MoveError(.unsafePath, …)`:
/// `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, or on a kernel without `openat2` an
/// `openat(O_NOFOLLOW | O_DIRECTORY)` per component. What follows (stat, open, create, link,
/// unlink, fsync) is done relative to the descriptors so obtained, never by path again, so a
/// directory swapped for a link meanwhile cannot lead outside the level directory.
///
/// The API checks filenames with `lookup` (through `BlockingExecutor.shared.run`), the mover moves
/// with it, and reconcile lists and removes with it. The level directory itself may be reached
/// through links (it is the operator's setting; `verifyLevelLayout` checks those at start).
public final class LevelRoot: Sendable {
    public let level: String
    public let directory: String
    let descriptor: FileDescriptor
    /// The device and inode of the directory when it was opened: a level whose path names another
    /// directory since (unmounted, remounted, replaced) is no longer this one (`stillInPlace`).
    let device: UInt64
    let inode: UInt64
    let resolution: PathResolution
    let onDirectorySynced: (@Sendable (String) -> Void)?
    /// Set once the reserved directory and its temporary directory exist.
    let reservedMade = Atomic<Bool>(false)
    /// Why the level is out of service although its path still names the directory opened (its
    /// `.relocator/` is missing though the level was in use before: `LevelReadiness`); nil when not.
    /// Nothing is moved into or out of it, and `.relocator/` is not created in it, meanwhile.
    let withdrawal = Mutex<String?>(nil)
    /// The fsyncs of this level under way, each by when it began (`syncing`).
    private let syncs = Mutex<(next: UInt64, since: [UInt64: ContinuousClock.Instant])>((0, [:]))

    /// How filenames are resolved: `openat2` when the kernel has it, else a walk; tests force the walk.
    enum PathResolution: Sendable {
        case automatic
        case componentWalk
    }

    /// Opens the level's directory.
    public convenience init(_ place: LevelPlace) throws {
        try self.init(place, resolution: .automatic, onDirectorySynced: nil)
    }

    init(_ place: LevelPlace, resolution: PathResolution, onDirectorySynced: (@Sendable (String) -> Void)?) throws {
        level = place.level
        directory = place.directory
        self.resolution = resolution
        self.onDirectorySynced = onDirectorySynced
        do {
            descriptor = try FileDescriptor.open(FilePath(place.directory), .readOnly, options: [.directory, .closeOnExec])
        } catch {
            throw MoveError.system("cannot open the level directory of", "'\(place.level)' (\(place.directory))", error)
        }
        do {
            let status = try descriptor.stat()
            device = UInt64(status.deviceID.rawValue)
            inode = UInt64(status.inode.rawValue)
        } catch {
            _ = Glibc.close(descriptor.rawValue)
            throw MoveError.system("cannot stat the level directory of", "'\(place.level)' (\(place.directory))", error)
        }
    }

    /// True while the level's path still names the directory opened (the same device and inode):
    /// false once it was unmounted (the path now names the bare mountpoint), remounted elsewhere or
    /// replaced. Throws when the path cannot be looked at.
    public func stillInPlace() throws -> Bool {
        if Mutant.levelCheckSkipped.isActive { return true }
        let status: Stat
        do {
            status = try Stat(FilePath(directory))
        } catch .noSuchFileOrDirectory, .notDirectory {
            return false
        } catch {
            throw MoveError.system("cannot stat the level directory of", "'\(level)' (\(directory))", error)
        }
        return UInt64(status.deviceID.rawValue) == device && UInt64(status.inode.rawValue) == inode
    }

    /// Takes the level out of service for the reason given (`LevelReadiness.unavailable`), or back
    /// into service with nil.
    public func withdraw(because reason: String?) {
        withdrawal.withLock { $0 = reason }
    }

    /// Why the level is withdrawn (`withdraw(because:)`), nil when it is not.
    public var withdrawn: String? { withdrawal.withLock { $0 } }

    /// Throws `level_unavailable` while withdrawn.
    func requireNotWithdrawn() throws {
        if let reason = withdrawn {
            throw MoveError(.levelUnavailable, "level '\(level)' is out of service: \(reason); nothing is moved into or out of it until then")
        }
    }

    /// Throws `level_unavailable` unless `stillInPlace` and not withdrawn.
    public func requireInPlace() throws {
        try requireNotWithdrawn()
        guard try stillInPlace() else {
            throw MoveError(.levelUnavailable, "level '\(level)' (\(directory)) is no longer the directory checked at start (unmounted, remounted or replaced); nothing is moved into or out of it until it is back")
        }
    }

    deinit {
        // Only read from: nothing to lose when close fails.
        _ = Glibc.close(descriptor.rawValue)
    }

    public var place: LevelPlace { LevelPlace(level: level, directory: directory) }

    /// The device and inode of the directory opened.
    public var identity: DirectoryIdentity { DirectoryIdentity(device: device, inode: inode) }

    /// What a filename names in this level.
    public enum FileStatus: Equatable, Sendable {
        case regularFile(size: Int64)
        case missing
        /// A directory, a FIFO…: the description says which.
        case notRegularFile(String)
    }

    /// What `filename` names here, without following any link. Throws `unsafe_path` for a
    /// symbolic link on its way or at its end.
    public func lookup(_ filename: Filename) throws -> FileStatus {
        guard let entry = try entry(filename, create: false), let status = try entry.status() else { return .missing }
        if status.isSymbolicLink { throw MoveError.symbolicLink(entry.display) }
        return status.isRegularFile ? .regularFile(size: status.size) : .notRegularFile(status.typeDescription)
    }

    /// `gold/movies/a.mp4`, how messages name a file of this level.
    func display(_ relative: String) -> String {
        relative.isEmpty ? level : "\(level)/\(relative)"
    }

    // MARK: - Resolution

    /// A name in a directory opened beneath the root.
    struct Entry {
        let root: LevelRoot
        /// The directory holding the name.
        let directory: Descriptor
        /// The directory's path relative to the root ("" for the root itself).
        let directoryPath: String
        let name: String

        var relative: String { directoryPath.isEmpty ? name : directoryPath + "/" + name }
        var display: String { root.display(relative) }

        /// `fstatat(AT_SYMLINK_NOFOLLOW)`; nil when the name is absent.
        func status() throws -> Stat? {
            switch Linux.status(of: name, in: directory.fd) {
            case .success(let status): return status
            case .failure(let error): throw MoveError.system("cannot stat", display, error)
            }
        }

        /// The same directory, another name.
        func sibling(_ other: String) -> Entry {
            Entry(root: root, directory: directory, directoryPath: directoryPath, name: other)
        }

        /// Opens the name for reading if it is a regular file; nil when absent. A symbolic link is
        /// `unsafe_path`, anything else `not_regular_file`.
        func openRegularFile() throws -> OpenFile? {
            guard let status = try status() else { return nil }
            if status.isSymbolicLink { throw MoveError.symbolicLink(display) }
            guard status.isRegularFile else { throw MoveError(.notRegularFile, "\(display) is \(status.typeDescription); refused") }
            // O_NONBLOCK: a FIFO swapped in meanwhile must not block the open.
            switch Linux.openAt(directory.fd, name, flags: O_RDONLY | O_NOFOLLOW | O_NONBLOCK) {
            case .success(let fd):
                let file = Descriptor(fd, display: display)
                let opened = try file.stat()
                guard opened.isRegularFile else { throw MoveError(.notRegularFile, "\(display) is \(opened.typeDescription); refused") }
                return OpenFile(entry: self, file: file, identity: FileIdentity(opened))
            case .failure(.noSuchFileOrDirectory):
                return nil
            case .failure(.tooManySymbolicLinkLevels):
                throw MoveError.symbolicLink(display)
            case .failure(let error):
                throw MoveError.system("cannot open", display, error)
            }
        }

        /// True when the name still names `identity`'s file.
        func names(_ identity: FileIdentity) throws -> Bool {
            guard let status = try status() else { return false }
            return FileIdentity(status).isSameFile(as: identity)
        }

        /// Unlinks the name and fsyncs its directory.
        func remove() throws {
            switch Linux.unlink(directory.fd, name) {
            case .success, .failure(.noSuchFileOrDirectory): break
            case .failure(let error): throw MoveError.system("cannot remove", display, error)
            }
            try root.sync(directory)
        }
    }

    /// A regular file opened for reading, with its status when opened.
    struct OpenFile {
        let entry: Entry
        let file: Descriptor
        let identity: FileIdentity

        /// The file is as it was at `reference` (when opened, by default): the same size,
        /// modification and change times through the descriptor, and its name still names it.
        func requireUnchanged(since reference: FileIdentity? = nil) throws {
            let reference = reference ?? identity
            let now = FileIdentity(try file.stat())
            guard now == reference else {
                let what = now.size == reference.size ? "was written to" : "changed size (\(reference.size) → \(now.size) bytes)"
                throw MoveError(.sourceChanged, "\(entry.display) \(what) while it was being moved")
            }
            guard try entry.names(now) else {
                throw MoveError(.sourceChanged, "\(entry.display) was replaced or removed while it was being moved")
            }
        }
    }

    /// The entry of `filename`: its directory opened beneath the root (created, durably, when
    /// `create`), and its last component. Nil when a directory on the way is missing (or is not a
    /// directory) and `create` is false.
    func entry(_ filename: Filename, create: Bool) throws -> Entry? {
        let components = Filename.components(of: filename.value)
        let directories = Array(components.dropLast())
        guard let directory = try openDirectory(directories, create: create) else { return nil }
        return Entry(root: self, directory: directory, directoryPath: directories.joined(separator: "/"), name: String(components.last!))
    }

    /// Opens `components` (a directory path relative to the root) beneath the root.
    func openDirectory(_ components: [Substring], create: Bool) throws -> Descriptor? {
        // The level directory itself: the descriptor held (what "." beneath it opens again).
        if components.isEmpty { return rootDirectory() }
        let relative = components.joined(separator: "/")
        if resolution == .automatic && !Linux.openat2Missing.load(ordering: .relaxed) {
            switch Linux.openBeneath(descriptor, relative, flags: O_RDONLY | O_DIRECTORY | O_CLOEXEC) {
            case .success(let fd):
                return Descriptor(fd, display: display(relative))
            case .failure(.noSuchFileOrDirectory) where !create:
                return nil
            case .failure(.noFunction):
                Linux.openat2Missing.store(true, ordering: .relaxed)
            case .failure(.tooManySymbolicLinkLevels), .failure(.improperLink), .failure(.noSuchFileOrDirectory),
                 .failure(.notDirectory), .failure(.resourceTemporarilyUnavailable):
                // The walk names the link, creates what is missing, or tells a file from a race.
                break
            case .failure(let error):
                throw MoveError.system("cannot open the directory", display(relative), error)
            }
        }
        return try walk(components, create: create)
    }

    /// One `openat(O_NOFOLLOW | O_DIRECTORY)` per component, from the root.
    private func walk(_ components: [Substring], create: Bool) throws -> Descriptor? {
        var current = rootDirectory()
        var path = ""
        for component in components {
            let name = String(component)
            let next = path.isEmpty ? name : path + "/" + name
            var opened: Descriptor?
            for _ in 0..<4 where opened == nil {
                switch Linux.openAt(current.fd, name, flags: O_RDONLY | O_DIRECTORY | O_NOFOLLOW) {
                case .success(let fd):
                    opened = Descriptor(fd, display: display(next))
                case .failure(.noSuchFileOrDirectory):
                    guard create else { return nil }
                    switch Linux.makeDirectory(current.fd, name) {
                    case .success:
                        // The new directory's name is durable before anything goes inside.
                        try sync(current)
                    case .failure(.fileExists):
                        break  // made meanwhile (another move): open it
                    case .failure(let error):
                        throw MoveError.system("cannot create the directory", display(next), error)
                    }
                case .failure(.tooManySymbolicLinkLevels), .failure(.notDirectory):
                    switch Linux.status(of: name, in: current.fd) {
                    case .success(let status?) where status.isSymbolicLink:
                        throw MoveError.symbolicLink(display(next))
                    case .success(let status?) where !status.isDirectory:
                        guard create else { return nil }
                        throw MoveError(.destinationConflict, "\(display(next)) is \(status.typeDescription), not a directory")
                    case .success:
                        continue  // changed meanwhile: look again
                    case .failure(let error):
                        throw MoveError.system("cannot stat", display(next), error)
                    }
                case .failure(let error):
                    throw MoveError.system("cannot open the directory", display(next), error)
                }
            }
            guard let opened else { throw MoveError(.ioError, "\(display(next)) keeps changing while it is looked up") }
            current = opened
            path = next
        }
        return current
    }

    /// The level directory, through the descriptor held since it was opened (no system call).
    /// For lookups beneath it; a listing takes `reopenRoot()`.
    func rootDirectory() -> Descriptor {
        Descriptor(borrowing: descriptor, from: self, display: level)
    }

    /// The level directory opened again: an open file description of its own, to list it.
    func reopenRoot() throws -> Descriptor {
        switch Linux.openAt(descriptor, ".", flags: O_RDONLY | O_DIRECTORY) {
        case .success(let fd): return Descriptor(fd, display: level)
        case .failure(let error): throw MoveError.system("cannot open the level directory of", "'\(level)' (\(directory))", error)
        }
    }

    /// True when `components` still resolves (beneath the root, without links) to `opened`'s
    /// directory: it was not renamed away or swapped meanwhile. Throws `unsafe_path` when a link
    /// is now on the way.
    func stillResolves(_ components: [Substring], to opened: Descriptor) throws -> Bool {
        if components.isEmpty {
            // "." beneath the root is the root: `opened` is still it if it is the same directory.
            let identity = FileIdentity(try opened.stat())
            return identity.device == device && identity.inode == inode
        }
        guard let again = try openDirectory(components, create: false) else { return false }
        return FileIdentity(try again.stat()).isSameFile(as: FileIdentity(try opened.stat()))
    }

    /// Runs `body`, an fsync of a file or directory of this level, counted as under way meanwhile:
    /// a disk whose writeback stalls answers what is cached (a level's checks) but not an fsync,
    /// and the worker takes a level whose fsync has waited past its patience out of service
    /// (`syncWaited`).
    public func syncing<T>(_ body: () throws -> T) rethrows -> T {
        let id = syncs.withLock { syncs in
            defer { syncs.next &+= 1 }
            syncs.since[syncs.next] = .now
            return syncs.next
        }
        defer { _ = syncs.withLock { $0.since.removeValue(forKey: id) } }
        return try body()
    }

    /// How long the oldest fsync of this level under way has waited at `now`; nil when none is.
    public func syncWaited(at now: ContinuousClock.Instant = .now) -> Duration? {
        syncs.withLock { $0.since.values.min() }.map { now - $0 }
    }

    /// fsyncs a directory of this level (and tells the fault hooks which one).
    func sync(_ directory: Descriptor) throws {
        try syncing { try directory.sync() }
        if let onDirectorySynced {
            onDirectorySynced(Self.kernelPath(of: directory.fd) ?? directory.display)
        }
    }

    /// What the kernel calls an open descriptor (`/proc/self/fd/N`).
    static func kernelPath(of fd: FileDescriptor) -> String? {
        var buffer = [CChar](repeating: 0, count: 4097)
        let count = readlink("/proc/self/fd/\(fd.rawValue)", &buffer, 4096)
        guard count > 0 else { return nil }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
