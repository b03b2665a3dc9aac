import RelocatorCore

/// The safe move. A file is never deleted unless an identical, verified copy exists at its new
/// place; a delivery of the same job again after a crash at any step finishes the move.
///
/// 1. Every name is resolved beneath its level directory without following links (`LevelRoot`),
///    and every later step works on the descriptors so obtained.
/// 2. The file is taken from its recorded level, else from another level (the same safe lookup),
///    else a published copy is verified against the recorded checksum.
/// 3. Same filesystem: hash, link the open file under the new name (never replacing a name), fsync
///    the directory, remove the old name, fsync its directory. EXDEV (bind mounts): as 4.
/// 4. Across filesystems: one pass that hashes while it writes the `PartName` temporary file,
///    fsync, drop its cached pages and read it back from the device, compare, keep mode, owner and
///    times, publish the verified inode under the final name, fsync the directory.
/// 5. The source is removed last, only while it is unchanged since the copy began (size, times,
///    and its name still naming the file read), and never when it is the published file itself.
public struct FileMover: FileMoving {
    /// Bytes per read and write; the move holds two such buffers.
    public var chunkSize: Int
    /// The checksum of the copy and the read-back (and of the result).
    public var algorithm: ChecksumAlgorithm
    /// Test hooks; nil in normal runs.
    public var faults: MoveFaults?
    /// Tests force the component walk that kernels without `openat2` use.
    var resolution: LevelRoot.PathResolution = .automatic

    public init(chunkSize: Int = 1 << 20, algorithm: ChecksumAlgorithm = .xxh128, faults: MoveFaults? = nil) {
        self.chunkSize = chunkSize
        self.algorithm = algorithm
        self.faults = faults
    }

    /// Moves the file; see the type's description. Blocks: call it from a worker thread.
    public func move(_ request: MoveRequest, hooks: MoveHooks = MoveHooks()) throws -> MoveResult {
        let move = Move(mover: self, request: request, hooks: hooks)
        var result = try move.run()
        result.pendingSync = move.pendingSync
        return result
    }
}

/// One move in progress: the request, its open level directories and its buffers.
final class Move {
    let mover: FileMover
    let request: MoveRequest
    let hooks: MoveHooks
    let buffers: ChunkBuffers
    private var roots: [String: LevelRoot] = [:]
    var clock: PhaseClock
    /// The source's directory, when its fsync is left to the caller.
    var pendingSync: PendingDirectorySync?

    init(mover: FileMover, request: MoveRequest, hooks: MoveHooks) {
        self.mover = mover
        self.request = request
        self.hooks = hooks
        self.buffers = ChunkBuffers(chunkSize: mover.chunkSize)
        self.clock = PhaseClock(hooks.phase)
    }

    var algorithm: ChecksumAlgorithm { mover.algorithm }
    var filename: Filename { request.filename }

    func step(_ step: MoveStep) throws {
        try mover.faults?.onStep?(step)
    }

    func run() throws -> MoveResult {
        let target = try root(request.target)
        try removeStaleParts(target: target)

        // The final name, when something has it already.
        var existing: LevelRoot.Entry?
        if let destination = try target.entry(filename, create: false), let status = try destination.status() {
            if status.isSymbolicLink { throw MoveError.symbolicLink(destination.display) }
            guard status.isRegularFile else {
                throw MoveError(.destinationConflict, "\(destination.display) exists and is \(status.typeDescription)")
            }
            existing = destination
        }

        var source = try open(at: request.source)
        var foundIn = request.source
        if source == nil {
            // Not where the database says: look on the other levels' disks, just as safely — also
            // when the target holds a copy already: an earlier delivery may have taken the file from
            // another level and published it, and that copy must go too (both are compared below).
            for place in request.others where place.level != request.target.level && place.level != request.source.level {
                if let found = try open(at: place) {
                    source = found
                    foundIn = place
                    break
                }
            }
            if source == nil, let existing {
                return try verifyPublished(existing)
            }
        }
        guard let source else {
            let places = [request.source] + request.others.filter { $0.level != request.target.level && $0.level != request.source.level }
                + [request.target]
            throw MoveError(.sourceMissing, "\(filename) is on no level's disk (looked in \(places.map(\.description).joined(separator: ", ")))")
        }

        buffers.fit(source.identity.size)
        clock.lap(.prepare)
        if let existing {
            return try settleBoth(source, existing, foundIn: foundIn)
        }
        guard let targetEntry = try target.entry(filename, create: true) else {
            throw MoveError(.ioError, "cannot create the directories of \(target.display(filename.value))")
        }
        try target.refuseSameDirectory(source.entry, targetEntry)
        let targetDevice = FileIdentity(try targetEntry.directory.stat()).device
        clock.lap(.prepare)
        if source.identity.device == targetDevice, let result = try moveWithinFilesystem(source, to: targetEntry, foundIn: foundIn) {
            return result
        }
        return try copyAcrossFilesystems(source, to: targetEntry, foundIn: foundIn)
    }

    // MARK: - Levels

    /// The open directory of a level (once per move).
    func root(_ place: LevelPlace) throws -> LevelRoot {
        if let root = roots[place.level] { return root }
        let root = try LevelRoot(place, resolution: mover.resolution, onDirectorySynced: mover.faults?.onDirectorySynced)
        roots[place.level] = root
        return root
    }

    /// The file in a level, opened for reading; nil when it is not there (or the level's directory
    /// is missing on this machine).
    func open(at place: LevelPlace) throws -> LevelRoot.OpenFile? {
        let root: LevelRoot
        do {
            root = try self.root(place)
        } catch let error as MoveError where error.systemError == .noSuchFileOrDirectory {
            return nil
        }
        return try root.entry(filename, create: false)?.openRegularFile()
    }

    // MARK: - A file already at the target

    /// The source is gone and the target holds the file: an earlier delivery published it. It
    /// must match the checksum that delivery recorded (hashed with the algorithm the record names).
    func verifyPublished(_ destination: LevelRoot.Entry) throws -> MoveResult {
        guard let published = try destination.openRegularFile() else {
            throw MoveError(.sourceChanged, "\(destination.display) disappeared while it was being checked")
        }
        let algorithm = request.expectedChecksum?.algorithm ?? self.algorithm
        let (sum, bytes) = try published.file.hash(algorithm, buffers: buffers)
        if let expected = request.expectedChecksum, expected != sum {
            throw MoveError(.destinationConflict, "\(destination.display) hashes to \(sum.short), not to the \(expected.short) recorded for this job, and the source is gone; left untouched")
        }
        // The delivery that removed the source may have stopped (or failed) before its directory
        // was fsynced: that removal is made durable now.
        let sourceDirectory: Descriptor?
        do {
            sourceDirectory = try root(request.source).entry(filename, create: false)?.directory
        } catch {
            // Not reachable safely any more (removed, or a link planted since): nothing there to sync.
            sourceDirectory = nil
        }
        if let directory = sourceDirectory {
            if hooks.deferSourceDirectorySync {
                pendingSync = try PendingDirectorySync(directory, faults: mover.faults)
            } else {
                try directory.sync()
            }
        }
        return MoveResult(bytes: bytes, checksum: sum, method: .alreadyInPlace, foundIn: request.target.level)
    }

    /// Both the source and the target hold the file (a crash after publishing, before removing
    /// the source): the source goes only if the two are identical — and never when they are one
    /// directory entry reached through two level names.
    func settleBoth(_ source: LevelRoot.OpenFile, _ destination: LevelRoot.Entry, foundIn: LevelPlace) throws -> MoveResult {
        guard let published = try destination.openRegularFile() else {
            throw MoveError(.sourceChanged, "\(destination.display) disappeared while it was being compared")
        }
        try destination.root.refuseSameDirectory(source.entry, destination)
        let (sum, bytes) = try hashSource(source)
        clock.lap(.copy)
        if !published.identity.isSameFile(as: source.identity) {
            // (The same inode under both names is a move on one filesystem that stopped between
            // the link and the unlink: nothing to compare.)
            let (publishedSum, _) = try published.file.hash(algorithm, buffers: buffers)
            guard publishedSum == sum else {
                throw MoveError(.destinationConflict, "\(destination.display) already exists with other content than \(source.entry.display); both left untouched")
            }
        }
        try removeSource(source, since: source.identity, destination: destination, published: nil)
        return MoveResult(bytes: bytes, checksum: sum, method: .alreadyInPlace, foundIn: foundIn.level)
    }

    /// The source's checksum and size, reporting progress and honouring `shouldStop`.
    func hashSource(_ source: LevelRoot.OpenFile) throws -> (Checksum, Int64) {
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

    // MARK: - Removing the source

    /// A file this move gave its final name, and the inode it named.
    struct Published {
        var entry: LevelRoot.Entry
        var identity: FileIdentity
    }

    /// Removes the source, last: only while its directory is still where its level says, the file
    /// is unchanged since `reference` (size, modification and change times) and its name still
    /// names the file that was read. When it changed, the copy is discarded — the published name
    /// removed if it still names what this move published and the source is still there, so
    /// there is always one copy — and the move fails with `source_changed` (retried).
    func removeSource(_ source: LevelRoot.OpenFile, since reference: FileIdentity, destination: LevelRoot.Entry,
                      published: Published?) throws {
        let entry = source.entry
        guard try entry.root.stillResolves(entry.directoryPath.split(separator: "/"), to: entry.directory) else {
            throw MoveError(.sourceChanged, "the directory of \(entry.display) was moved or replaced during the move; the source was not removed")
        }
        do {
            try source.requireUnchanged(since: reference)
        } catch var error as MoveError where error.kind == .sourceChanged {
            if let published { error.message += "; " + discard(published, keeping: entry) }
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
        try step(.sourceRemoved)
        clock.lap(.removeSource)
        if hooks.deferSourceDirectorySync {
            pendingSync = try PendingDirectorySync(entry.directory, faults: mover.faults)
        } else {
            try entry.root.sync(entry.directory)
            clock.lap(.sourceDirectoryFsync)
            try step(.sourceDirectorySynced)
        }
        source.file.closeInBackground()
        hooks.didRemoveSource()
    }

    /// Removes what this move published, if the name still names it and the source is still
    /// there; otherwise leaves it (it may be the only copy). Says what it did, for the message.
    func discard(_ published: Published, keeping source: LevelRoot.Entry) -> String {
        do {
            guard try published.entry.names(published.identity) else {
                return "\(published.entry.display) no longer names the copy; left as it is"
            }
            guard try source.status()?.isRegularFile == true else {
                return "the source is gone, so the copy at \(published.entry.display) is kept"
            }
            try published.entry.remove()
            return "the copy at \(published.entry.display) was removed; the move starts again"
        } catch {
            return "the copy at \(published.entry.display) is kept (\(error))"
        }
    }
}
