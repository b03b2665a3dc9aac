import RelocatorCore
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// The move's world on this machine's level directories: every name resolved beneath its level
/// (`LevelRoot`), every later step relative to the descriptors so obtained.
final class LevelWorld: MoveWorld {
    typealias Entry = LevelRoot.Entry
    typealias File = LevelRoot.OpenFile
    typealias Identity = FileIdentity

    let mover: FileMover
    let request: MoveRequest
    let hooks: MoveHooks
    let buffers: ChunkBuffers
    var clock: PhaseClock
    /// The levels searched besides the source and the target.
    let others: [LevelPlace]
    private var roots: [String: LevelRoot] = [:]
    private var locks: [ContentLock] = []
    /// The source's directory, when its fsync is left to the caller.
    var pendingSync: PendingDirectorySync?
    /// The `no-read-back` mutant's memory of the checksum computed in flight.
    var lastCopyChecksum: Checksum?

    init(mover: FileMover, request: MoveRequest, hooks: MoveHooks) {
        self.mover = mover
        self.request = request
        self.hooks = hooks
        self.buffers = ChunkBuffers(chunkSize: mover.chunkSize)
        self.clock = PhaseClock(hooks.phase)
        self.others = request.others.filter { $0.level != request.target.level && $0.level != request.source.level }
    }

    var otherCount: Int { others.count }
    var algorithm: ChecksumAlgorithm { mover.algorithm }
    var expectedChecksum: Checksum? { request.expectedChecksum }
    var filename: Filename { request.filename }

    func place(_ side: MoveSide) -> LevelPlace {
        switch side {
        case .source: return request.source
        case .target: return request.target
        case .other(let index): return others[index]
        }
    }

    func level(_ side: MoveSide) -> String { place(side).level }

    func display(_ entry: Entry) -> String { entry.display }

    func missingError() -> MoveError {
        let places = [request.source] + others + [request.target]
        return MoveError(.sourceMissing, "\(filename) is on no level's disk (looked in \(places.map(\.description).joined(separator: ", ")))")
    }

    /// The open directory of a level: the worker's held one, else opened once per move. Nil when
    /// the directory is missing on this machine (the target's absence is an error).
    func root(_ side: MoveSide) throws -> LevelRoot? {
        let place = place(side)
        if let root = roots[place.level] { return root }
        // A level out of service, not opened yet or withdrawn (a bare mountpoint) is neither used
        // nor searched, nor opened by its path: the move waits.
        if let held = try mover.levels?.inService(place) {
            roots[place.level] = held
            return held
        }
        let root: LevelRoot
        do {
            root = try LevelRoot(place, resolution: mover.resolution, onDirectorySynced: mover.faults?.onDirectorySynced)
        } catch let error as MoveError where error.systemError == .noSuchFileOrDirectory && side != .target {
            return nil
        }
        roots[place.level] = root
        return root
    }

    private var sides: [MoveSide] { [.source, .target] + others.indices.map { .other($0) } }

    // MARK: - The content's lock

    func lockContent() throws -> Bool {
        var levelRoots: [LevelRoot] = []
        for side in [MoveSide.source, .target] { if let root = try root(side) { levelRoots.append(root) } }
        return try lock(levelRoots)
    }

    func lockAlso(_ side: MoveSide) throws -> Bool {
        guard let root = try root(side) else { return true }
        return try lock([root])
    }

    /// A few quick tries before giving up: a lock just released can linger for a moment in a
    /// child process between its fork and its exec. A holder that keeps it is another delivery.
    private func lock(_ levelRoots: [LevelRoot]) throws -> Bool {
        for pause in [0, 1, 4, 16, 64] as [UInt32] {
            if pause > 0 { usleep(pause * 1000) }
            if let taken = try ContentLock.tryLock(cid: request.cid, in: levelRoots) {
                locks.append(taken)
                return true
            }
        }
        return false
    }

    func unlockContent() {
        for lock in locks { lock.release() }
        locks = []
    }

    func requireLevelsInPlace() throws {
        for root in roots.values { try root.requireInPlace() }
    }

    // MARK: - Names and files

    func entry(_ side: MoveSide, create: Bool) throws -> Entry? {
        guard let root = try root(side) else { return nil }
        guard let entry = try root.entry(filename, create: create) else {
            if create { throw MoveError(.ioError, "cannot create the directories of \(root.display(filename.value))") }
            return nil
        }
        return entry
    }

    func holdsRegularFile(_ entry: Entry) throws -> Bool {
        guard let status = try entry.status() else { return false }
        if status.isSymbolicLink { throw MoveError.symbolicLink(entry.display) }
        guard status.isRegularFile else {
            throw MoveError(.destinationConflict, "\(entry.display) exists and is \(status.typeDescription)")
        }
        return true
    }

    func open(_ entry: Entry) throws -> File? { try entry.openRegularFile() }
    func entry(of file: File) -> Entry { file.entry }
    func identity(of file: File) -> Identity { file.identity }
    func currentIdentity(of file: File) throws -> Identity { FileIdentity(try file.file.stat()) }

    func size(_ identity: Identity) -> Int64 { identity.size }

    func sameContent(_ a: Identity, _ b: Identity) -> Bool {
        a.isSameFile(as: b) && a.size == b.size && a.modified.tv_sec == b.modified.tv_sec && a.modified.tv_nsec == b.modified.tv_nsec
    }

    func isSameFile(_ a: Identity, _ b: Identity) -> Bool { a.isSameFile(as: b) }

    func names(_ entry: Entry, _ identity: Identity) throws -> Bool {
        guard let status = try entry.status(), status.isRegularFile else { return false }
        return sameContent(FileIdentity(status), identity)
    }

    func refuseSameDirectory(_ a: Entry, _ b: Entry) throws { try a.root.refuseSameDirectory(a, b) }

    func sameFilesystem(_ file: File, _ entry: Entry) throws -> Bool {
        file.identity.device == FileIdentity(try entry.directory.stat()).device
    }

    func hashSource(_ source: File) throws -> (Checksum, Int64) {
        let total = source.identity.size
        let (sum, bytes) = try source.file.hash(algorithm, buffers: buffers) { done in
            hooks.progress(done, total)
            if hooks.shouldStop() { throw MoveError(.cancelled, "stopped while hashing \(source.entry.display)") }
        }
        guard bytes == total else {
            throw MoveError(.sourceChanged, "\(source.entry.display) changed size while it was read (\(total) → \(bytes) bytes)")
        }
        return (sum, bytes)
    }

    func hash(_ file: File, _ algorithm: ChecksumAlgorithm) throws -> (Checksum, Int64) {
        buffers.fit(file.identity.size)
        return try file.file.hash(algorithm, buffers: buffers)
    }

    func requireUnchanged(_ file: File, since reference: Identity) throws { try file.requireUnchanged(since: reference) }

    /// The entry's directory is still where its level says (not renamed away, no link on the way
    /// now), and the level is still the directory checked: right before a name is given, so
    /// nothing lands outside the level.
    func requireInPlace(_ entry: Entry) throws {
        try requireInPlace(entry, else: "nothing published")
    }

    /// The same, `outcome` saying in the error what was left undone.
    func requireInPlace(_ entry: Entry, else outcome: String) throws {
        try entry.root.requireInPlace()
        guard try entry.root.stillResolves(Filename.components(of: entry.directoryPath), to: entry.directory) else {
            throw MoveError(.ioError, "the directory of \(entry.display) was moved or replaced during the move; \(outcome)")
        }
    }

    func record(_ checksum: Checksum, _ bytes: Int64) throws -> Bool {
        try hooks.willPublish(checksum, bytes)
        return true
    }

    // MARK: - Changing names

    func link(_ file: File, as entry: Entry) throws -> LinkOutcome {
        switch Linux.link(file.file.fd, into: entry.directory.fd, as: entry.name) {
        case .success: return .linked
        case .failure(.fileExists): return .exists
        case .failure(.improperLink): return .crossDevice
        case .failure(.notPermitted), .failure(.notSupported), .failure(.tooManyLinks): return .refused
        case .failure(.noSuchFileOrDirectory):
            throw MoveError(.ioError, "\(file.entry.display) was removed during the move; it starts again")
        case .failure(let error):
            throw MoveError.system("cannot link to", entry.display, error)
        }
    }

    /// `renameat2(RENAME_NOREPLACE)` of the source's name, checked to be the file that was hashed.
    func rename(_ source: File, to target: Entry) throws -> RenameOutcome {
        let entry = source.entry
        guard try entry.root.stillResolves(Filename.components(of: entry.directoryPath), to: entry.directory) else {
            throw MoveError(.sourceChanged, "the directory of \(entry.display) was moved or replaced during the move; nothing moved")
        }
        try source.requireUnchanged()
        try requireInPlace(target)
        switch Linux.renameNoReplace(entry.directory.fd, entry.name, to: target.directory.fd, target.name) {
        case .success: break
        case .failure(.improperLink): return .crossDevice
        case .failure(.fileExists): return .exists
        case .failure(let error): throw MoveError.system("cannot rename \(entry.display) to", target.display, error)
        }
        guard try target.names(source.identity) else {
            // Another file took the source's name between the check and the rename: give it its
            // name back and start again.
            if case .failure(let error) = Linux.renameNoReplace(target.directory.fd, target.name, to: entry.directory.fd, entry.name) {
                throw MoveError.system("\(entry.display) was replaced during the move and cannot be renamed back from", target.display, error)
            }
            throw MoveError(.sourceChanged, "\(entry.display) was replaced during the move; nothing moved")
        }
        hooks.didRemoveSource()
        return .renamed
    }

    func removeSource(_ source: File, since reference: Identity, keeping destination: Entry, discarding: Identity?) throws {
        let entry = source.entry
        guard try entry.root.stillResolves(Filename.components(of: entry.directoryPath), to: entry.directory) else {
            throw MoveError(.sourceChanged, "the directory of \(entry.display) was moved or replaced during the move; the source was not removed")
        }
        try entry.root.requireInPlace()
        // The copy kept is where its level is: not on a disk unmounted or swapped since it was
        // checked (its name would be the only one left, on a disk no longer at the level's path).
        try requireInPlace(destination, else: "the source was not removed")
        do {
            if !Mutant.noSourceCheckBeforeRemoval.isActive { try source.requireUnchanged(since: reference) }
        } catch var error as MoveError where error.kind == .sourceChanged {
            if let discarding { error.message += "; " + discard(destination, discarding, keeping: entry) }
            throw error
        }
        // Never the published file itself: one inode under its only name is one directory entry
        // reached through two level names.
        let status = try source.file.stat()
        if status.linkCount < 2, try destination.names(FileIdentity(status)) {
            throw MoveError(.unsafePath, "\(entry.display) is \(destination.display) itself: levels '\(entry.root.level)' (\(entry.root.directory)) and '\(destination.root.level)' (\(destination.root.directory)) are one directory; nothing removed")
        }
        switch Linux.unlink(entry.directory.fd, entry.name) {
        case .success, .failure(.noSuchFileOrDirectory): break
        case .failure(let error): throw MoveError.system("cannot remove the source", entry.display, error)
        }
        try fault(.sourceRemoved)
        source.file.closeInBackground()
        hooks.didRemoveSource()
    }

    func discard(_ published: Entry, _ identity: Identity, keeping source: Entry) -> String {
        do {
            guard try names(published, identity) else {
                return "\(published.display) no longer names the copy; left as it is"
            }
            guard try source.status()?.isRegularFile == true else {
                return "the source is gone, so the copy at \(published.display) is kept"
            }
            try published.remove()
            return "the copy at \(published.display) was removed; the move starts again"
        } catch {
            return "the copy at \(published.display) is kept (\(error))"
        }
    }

    func syncDirectory(of entry: Entry) throws {
        if Mutant.noTargetDirectoryFsync.isActive { return }
        try entry.root.sync(entry.directory)
    }

    func syncSourceDirectory(of entry: Entry) throws {
        if hooks.deferSourceDirectorySync {
            pendingSync = try PendingDirectorySync(entry.directory, root: entry.root, faults: mover.faults)
        } else {
            try entry.root.sync(entry.directory)
            clock.lap(.sourceDirectoryFsync)
            try fault(.sourceDirectorySynced)
        }
    }

    // MARK: - Tests and measurements

    func fault(_ step: MoveStep) throws { try mover.faults?.onStep?(step) }
    func lap(_ phase: MovePhase) { clock.lap(phase) }
}
