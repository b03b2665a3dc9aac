import RelocatorCore

/// The move protocol as a state machine: each `advance` performs one step — one action on the
/// world — and says whether the move goes on, finished, failed, or found the content locked by
/// another delivery. `FileMover` runs it on real level directories (`LevelWorld`); the
/// interleaving explorer runs the same machine, step by step, for several deliveries of one job
/// on an in-memory world. docs/MOVE.md describes the steps.
///
/// The rules every path keeps:
/// - Nothing is published and nothing removed unless this delivery holds the content's lock
///   (every level of the move, taken without waiting) and, under that lock, its token passed the
///   job's check (`record`), which also records the verified checksum.
/// - A source (or the other of two copies) is removed only after re-checking, under the lock, that
///   the copy kept is still there: the same file, unchanged since it was verified.
/// - Only this delivery's own temporary file, and this content's temporaries in the reserved
///   directory, are ever removed besides.
public struct MoveMachine<World: MoveWorld> {
    public enum Step: String, Sendable, Hashable, CaseIterable {
        case lock, inspect
        /// Only the target holds the file (an earlier delivery removed the source): verified.
        case verifyPublished
        /// Both hold it: compared, the job's token checked, the source removed.
        case compareCopies, recordBeforeSettling
        /// One filesystem: hashed, recorded, linked under the new name, the old name removed.
        case hashSource, recordBeforeLinking, link, syncLinkedDirectory, checkLinked
        /// One filesystem where hard links are refused: renamed.
        case renameSource
        /// Across filesystems: a temporary file written, given the source's attributes, fsynced
        /// once, verified from the device, published.
        case removeStaleTemporaries, createTemporary, copy, keepAttributes, syncCopy, readBack
        case recordBeforePublishing, publish, removeTemporaryName, syncTargetDirectory
        /// Every path that removes a source: the copy kept is checked, then the source removed
        /// (two steps: another process may act between them, unless it respects the lock).
        case checkKept, removeSource
        case unlock, syncSourceDirectory, ended
    }

    public enum Outcome {
        /// The step was made; the next one is `step`.
        case next
        case finished(MoveResult)
        /// Another delivery holds the content's lock: nothing was done.
        case busy
        /// The error of the step; the temporary file was removed and the lock released.
        case failed(any Error)
    }

    public private(set) var step: Step = .lock
    /// The registers the steps pass on.
    var source: World.File?
    var foundIn: MoveSide = .source
    /// The target's final name.
    var target: World.Entry?
    /// A copy already at the target (the both-copies path).
    var existing: World.Entry?
    /// The copy kept when the source goes, and its identity when verified.
    var keptEntry: World.Entry?
    var kept: World.Identity?
    /// What the source must still be when it is removed; what to discard if it changed.
    var reference: World.Identity?
    var discarding: World.Identity?
    var temporary: World.File?
    var temporaryNamed = false
    var checksum: Checksum?
    var bytes: Int64 = 0
    var publishedByOther = false
    var method = MoveResult.Method.copied
    var locked = false
    /// The directory whose fsync ends the move (the source's), nil when none is due.
    var syncEntry: World.Entry?
    var result: MoveResult?

    public init() {}

    /// Performs the next step.
    public mutating func advance(_ world: World) -> Outcome {
        do {
            switch step {
            case .lock:
                guard try Mutant.noContentLock.isActive || world.lockContent() else {
                    step = .ended
                    return .busy
                }
                locked = true
                step = .inspect
            case .inspect:
                try inspect(world)
            case .verifyPublished:
                try verifyPublished(world)
            case .compareCopies:
                try compareCopies(world)
            case .recordBeforeSettling, .recordBeforeLinking, .recordBeforePublishing:
                guard try world.record(checksum!, bytes) else {
                    throw MoveError(.leaseLost, "the job is no longer this delivery's; nothing was published or removed")
                }
                world.lap(.queue)
                if step == .recordBeforeSettling {
                    keptEntry = existing
                    reference = world.identity(of: source!)
                    result = MoveResult(bytes: bytes, checksum: checksum!, method: .alreadyInPlace, foundIn: world.level(foundIn))
                    step = .checkKept
                } else {
                    step = step == .recordBeforeLinking ? .link : .publish
                }
            case .hashSource:
                let source = source!
                (checksum, bytes) = try world.hashSource(source)
                world.lap(.copy)
                if !Mutant.noSourceCheckBeforePublish.isActive { try world.requireUnchanged(source, since: world.identity(of: source)) }
                step = .recordBeforeLinking
            case .link:
                try link(world)
            case .syncLinkedDirectory:
                try world.syncDirectory(of: target!)
                world.lap(.targetDirectoryFsync)
                try world.fault(.targetDirectorySynced)
                step = .checkLinked
            case .checkLinked:
                try checkLinked(world)
            case .renameSource:
                try renameSource(world)
            case .removeStaleTemporaries:
                try world.removeStaleTemporaries()
                step = .createTemporary
            case .createTemporary:
                temporary = try world.createTemporary()
                temporaryNamed = true
                world.lap(.create)
                step = .copy
            case .copy:
                checksum = try world.copy(source!, into: temporary!)
                bytes = world.size(world.identity(of: source!))
                world.lap(.copy)
                try world.fault(.copied)
                step = .keepAttributes
            case .keepAttributes:
                try world.keepAttributes(of: source!, on: temporary!)
                world.lap(.attributes)
                step = .syncCopy
            case .syncCopy:
                // The copy's one fsync: its bytes and its attributes, before it is read back and
                // long before it gets its name (docs/MOVE.md, "What each fsync makes durable").
                try world.syncFile(temporary!)
                world.lap(.fsync)
                try world.fault(.synced)
                step = .readBack
            case .readBack:
                let (readBack, readBytes) = try world.readBack(temporary!)
                guard readBack == checksum, readBytes == bytes else {
                    throw MoveError(.checksumMismatch, "the copy of \(world.display(world.entry(of: source!))) read back as \(readBack.short) (\(readBytes) bytes) but the source hashed to \(checksum!.short) (\(bytes) bytes)")
                }
                world.lap(.readBack)
                try world.fault(.verified)
                // Cheap, before the file gets its name; again right before the source is removed.
                if !Mutant.noSourceCheckBeforePublish.isActive { try world.requireUnchanged(source!, since: world.identity(of: source!)) }
                step = .recordBeforePublishing
            case .publish:
                try publish(world)
            case .removeTemporaryName:
                world.removeTemporary(temporary!)
                temporaryNamed = false
                world.lap(.publish)
                try world.fault(.published)
                step = .syncTargetDirectory
            case .syncTargetDirectory:
                try world.syncDirectory(of: target!)
                world.lap(.targetDirectoryFsync)
                try world.fault(.targetDirectorySynced)
                keptEntry = target
                reference = world.identity(of: source!)
                discarding = publishedByOther ? nil : kept
                result = MoveResult(bytes: bytes, checksum: checksum!, method: publishedByOther ? .alreadyInPlace : .copied,
                                    foundIn: world.level(foundIn))
                step = .checkKept
            case .checkKept:
                // The copy to keep is still at its name, the same file, unchanged since it was verified.
                guard try Mutant.noKeptCheck.isActive || world.names(keptEntry!, kept!) else {
                    throw MoveError(.sourceChanged, "\(world.display(keptEntry!)) changed or disappeared before the source was removed; nothing removed")
                }
                step = .removeSource
            case .removeSource:
                try world.removeSource(source!, since: reference!, keeping: keptEntry!, discarding: discarding)
                world.lap(.removeSource)
                syncEntry = world.entry(of: source!)
                step = .unlock
            case .unlock:
                world.unlockContent()
                locked = false
                step = syncEntry == nil ? .ended : .syncSourceDirectory
                if step == .ended { return .finished(result!) }
            case .syncSourceDirectory:
                try world.syncSourceDirectory(of: syncEntry!)
                step = .ended
                return .finished(result!)
            case .ended:
                preconditionFailure("a move that ended was advanced")
            }
            return .next
        } catch {
            return fail(error, world)
        }
    }

    /// Runs every step until the move ends.
    public mutating func run(_ world: World) -> Outcome {
        while true {
            let outcome = advance(world)
            if case .next = outcome { continue }
            return outcome
        }
    }

    /// Ends the move with `error`: this delivery's temporary file goes and the lock is released.
    private mutating func fail(_ error: any Error, _ world: World) -> Outcome {
        if temporaryNamed, let temporary { world.removeTemporary(temporary) }
        temporaryNamed = false
        if locked { world.unlockContent() }
        locked = false
        step = .ended
        return .failed(error)
    }

    // MARK: - Steps

    /// Where the file is: at the source, else on another level, else (only) at the target.
    private mutating func inspect(_ world: World) throws {
        try world.requireLevelsInPlace()
        if let entry = try world.entry(.target, create: false), try world.holdsRegularFile(entry) { existing = entry }
        var sides: [MoveSide] = [.source]
        for index in 0..<world.otherCount { sides.append(.other(index)) }
        // The first level out of service for this process that could not be searched.
        var unseen: MoveError?
        for side in sides {
            // Not where the database says: the other levels are searched just as safely — also when
            // the target holds a copy already: an earlier delivery may have taken the file from
            // another level and published it, and that copy must go too (both are compared).
            let found: World.Entry?
            do {
                found = try world.entry(side, create: false)
            } catch let error as MoveError where error.kind == .levelUnavailable && side != .source {
                // Another level out of service (unmounted, not answering) is not searched: a copy
                // at the target that proves itself is finished without it (a copy there, if any,
                // is reconcile's); with none, the move waits rather than call the file missing.
                unseen = unseen ?? error
                continue
            }
            if let entry = found, let file = try world.open(entry) {
                if side != .source, try !world.lockAlso(side) {
                    throw MoveError(.contentLocked, "\(world.display(entry)) is locked by another process on this host; nothing was done")
                }
                source = file
                foundIn = side
                break
            }
        }
        world.lap(.prepare)
        guard let source else {
            guard existing != nil else { throw unseen ?? world.missingError() }
            step = .verifyPublished
            return
        }
        if existing != nil {
            step = .compareCopies
            return
        }
        guard let target = try world.entry(.target, create: true) else { throw world.missingError() }
        self.target = target
        try world.refuseSameDirectory(world.entry(of: source), target)
        step = try world.sameFilesystem(source, target) ? .hashSource : .removeStaleTemporaries
        world.lap(.prepare)
    }

    /// The source is gone and the target holds the file: an earlier delivery published it. It
    /// must match the checksum that delivery recorded (hashed with the algorithm the record names).
    private mutating func verifyPublished(_ world: World) throws {
        let entry = existing!
        guard let published = try world.open(entry) else {
            throw MoveError(.sourceChanged, "\(world.display(entry)) disappeared while it was being checked")
        }
        let expected = world.expectedChecksum
        let (sum, size) = try world.hash(published, expected?.algorithm ?? world.algorithm)
        if let expected, expected != sum {
            throw MoveError(.destinationConflict, "\(world.display(entry)) hashes to \(sum.short), not to the \(expected.short) recorded for this job, and the source is gone; left untouched")
        }
        // The delivery that removed the source may have stopped before its directory was fsynced:
        // that removal is made durable now (when the directory is still reachable safely).
        do {
            syncEntry = try world.entry(.source, create: false)
        } catch {
            syncEntry = nil  // removed, or a link planted since: nothing there to sync
        }
        result = MoveResult(bytes: size, checksum: sum, method: .alreadyInPlace, foundIn: world.level(.target))
        step = .unlock
    }

    /// Both the source and the target hold the file (a crash after publishing, before removing
    /// the source): the source goes only if the two are identical — and never when they are one
    /// directory entry reached through two level names.
    private mutating func compareCopies(_ world: World) throws {
        let source = source!, entry = existing!
        guard let published = try world.open(entry) else {
            throw MoveError(.sourceChanged, "\(world.display(entry)) disappeared while it was being compared")
        }
        try world.refuseSameDirectory(world.entry(of: source), entry)
        let (sum, size) = try world.hashSource(source)
        world.lap(.copy)
        // (The same inode under both names is a move on one filesystem that stopped between the
        // link and the unlink: nothing to compare.)
        if !world.isSameFile(world.identity(of: published), world.identity(of: source)) {
            let (other, _) = try world.hash(published, world.algorithm)
            guard other == sum else {
                throw MoveError(.destinationConflict, "\(world.display(entry)) already exists with other content than \(world.display(world.entry(of: source))); both left untouched")
            }
        }
        checksum = sum
        bytes = size
        kept = world.identity(of: published)
        step = .recordBeforeSettling
    }

    private mutating func link(_ world: World) throws {
        let source = source!, target = target!
        try world.requireInPlace(target)
        switch try world.link(source, as: target) {
        case .linked:
            world.lap(.publish)
            try world.fault(.published)
            step = .syncLinkedDirectory
        case .crossDevice:
            step = .removeStaleTemporaries
        case .exists:
            // The final name appeared on the way: fine when it holds these very bytes.
            existing = target
            step = .compareCopies
        case .refused:
            step = .renameSource
        }
    }

    /// The link changed the file's change time: what it is now is the reference, as long as its
    /// size and modification time are still those that were hashed.
    private mutating func checkLinked(_ world: World) throws {
        let source = source!, target = target!
        let linked = try world.currentIdentity(of: source)
        guard world.sameContent(linked, world.identity(of: source)) else {
            let note = world.discard(target, linked, keeping: world.entry(of: source))
            throw MoveError(.sourceChanged, "\(world.display(world.entry(of: source))) was written to while it was being moved; \(note)")
        }
        keptEntry = target
        kept = linked
        reference = linked
        discarding = linked
        result = MoveResult(bytes: bytes, checksum: checksum!, method: .linked, foundIn: world.level(foundIn))
        step = .checkKept
    }

    private mutating func renameSource(_ world: World) throws {
        switch try world.rename(source!, to: target!) {
        case .renamed:
            world.lap(.publish)
            try world.fault(.published)
            try world.syncDirectory(of: target!)
            world.lap(.targetDirectoryFsync)
            try world.fault(.targetDirectorySynced)
            syncEntry = world.entry(of: source!)
            result = MoveResult(bytes: bytes, checksum: checksum!, method: .linked, foundIn: world.level(foundIn))
            step = .unlock
        case .crossDevice:
            step = .removeStaleTemporaries
        case .exists:
            existing = target
            step = .compareCopies
        }
    }

    /// Gives the verified temporary file its final name: the name gets exactly the bytes verified.
    private mutating func publish(_ world: World) throws {
        let target = target!, temporary = temporary!
        try world.requireInPlace(target)
        switch try world.link(temporary, as: target) {
        case .linked:
            kept = try world.currentIdentity(of: temporary)
        case .exists:
            // Published meanwhile by someone else: fine when it holds these very bytes.
            guard let other = try world.open(target) else {
                throw MoveError(.sourceChanged, "\(world.display(target)) appeared and disappeared during the move")
            }
            let (otherSum, _) = try world.hash(other, checksum!.algorithm)
            guard otherSum == checksum else {
                throw MoveError(.destinationConflict, "\(world.display(target)) appeared while copying with other content; left untouched")
            }
            kept = world.identity(of: other)
            publishedByOther = true
        case .refused:
            // No hard links here: rename the temporary name, if it still names this copy.
            switch try world.renameTemporary(temporary, to: target) {
            case .renamed: kept = try world.currentIdentity(of: temporary)
            case .exists: throw MoveError(.destinationConflict, "\(world.display(target)) appeared while copying; left untouched")
            case .crossDevice: throw MoveError(.ioError, "cannot publish \(world.display(target)): its directory is another mount than the reserved directory")
            }
        case .crossDevice:
            throw MoveError(.ioError, "cannot publish \(world.display(target)): its directory is another mount than the reserved directory")
        }
        step = .removeTemporaryName
    }
}

/// The interleaving explorer keeps the machines of its deliveries in the states it has visited.
extension MoveMachine: Equatable where World.File: Equatable, World.Entry: Equatable, World.Identity: Equatable {}
extension MoveMachine: Hashable where World.File: Hashable, World.Entry: Hashable, World.Identity: Hashable {}
