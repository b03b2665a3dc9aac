import RelocatorCore
import Synchronization

/// The safe move. A file is never deleted unless an identical, verified copy exists at its new
/// place; a delivery of the same job again after a crash at any step finishes the move; two
/// deliveries of one job (a paused process that was reaped, and the next) never both act.
///
/// The protocol is `MoveMachine` (docs/MOVE.md); `LevelWorld` performs its steps on the level
/// directories:
/// 1. The content's lock is taken in every level of the move (`ContentLock`), without waiting.
/// 2. Every name is resolved beneath its level directory without following links (`LevelRoot`),
///    and every later step works on the descriptors so obtained.
/// 3. The file is taken from its recorded level, else from another level (the same safe lookup),
///    else a published copy is verified against the recorded checksum.
/// 4. Same filesystem: hash, record (the job's token checked), link the open file under the new
///    name, fsync the directory, re-check the new name, remove the old one. EXDEV: as 5.
/// 5. Across filesystems: one pass that hashes while it writes the temporary file in the level's
///    reserved directory, fsync, drop its cached pages and read it back from the device, compare,
///    keep mode, owner and times, record, publish the verified inode under the final name, fsync
///    the directory.
/// 6. The source is removed last, only while the copy kept is still there, unchanged, and the
///    source is unchanged since the copy began — and never when it is the published file itself.
public struct FileMover: FileMoving {
    /// Bytes per read and write; the move holds two such buffers.
    public var chunkSize: Int
    /// The checksum of the copy and the read-back (and of the result).
    public var algorithm: ChecksumAlgorithm
    /// Test hooks; nil in normal runs.
    public var faults: MoveFaults?
    /// The level directories a worker opened at its start, used instead of opening each move's
    /// levels again by path: a level whose path names another directory since is refused with
    /// `level_unavailable`, so no file ever lands in a bare mountpoint. Nil: each move opens its
    /// levels.
    public var levels: HeldLevels?
    /// Tests force the component walk that kernels without `openat2` use.
    var resolution: LevelRoot.PathResolution = .automatic

    public init(chunkSize: Int = 1 << 20, algorithm: ChecksumAlgorithm = .xxh128, faults: MoveFaults? = nil,
                levels: HeldLevels? = nil) {
        self.chunkSize = chunkSize
        self.algorithm = algorithm
        self.faults = faults
        self.levels = levels
    }

    /// Moves the file; see the type's description. Blocks: call it from a worker thread. Throws
    /// `MoveError(.contentLocked, …)` when another delivery holds the content's lock.
    public func move(_ request: MoveRequest, hooks: MoveHooks = MoveHooks()) throws -> MoveResult {
        let world = LevelWorld(mover: self, request: request, hooks: hooks)
        var machine = MoveMachine<LevelWorld>()
        switch machine.run(world) {
        case .finished(var result):
            result.pendingSync = world.pendingSync
            return result
        case .busy:
            throw MoveError(.contentLocked, "content \(request.cid) is being moved or checked by another process on this host (it holds the content's lock); nothing was done")
        case .failed(let error):
            throw error
        case .next:
            preconditionFailure("a move ended with a step to go")
        }
    }
}

/// The level directories a worker holds open from its start (see `FileMover.levels`), and those
/// it could not open yet because they did not answer then: out of service until opened.
public final class HeldLevels: Sendable {
    private struct State {
        var held: [String: LevelRoot] = [:]
        /// Levels not opened yet (their directory did not answer when the worker started), with
        /// why they are not in service.
        var unopened: [String: (place: LevelPlace, why: String)] = [:]
        /// The held levels as resolved at the start (`verifyLevelLayout`), and the levels opened
        /// since or being opened (`claim`): what a level opened later is checked against.
        var resolved: [String: ResolvedLevel] = [:]
        /// The levels the worker's checks find out of service, with why (`markOutOfService`).
        var outOfService: [String: String] = [:]
    }

    private let state: Mutex<State>

    /// The directories held now.
    public var roots: [String: LevelRoot] { state.withLock { $0.held } }

    /// The levels held whose oldest fsync under way has waited longer than `patience` at `now`,
    /// with why (`LevelRoot.syncing`).
    public func syncsNotAnswering(patience: Duration, at now: ContinuousClock.Instant = .now) -> [String: String] {
        var found: [String: String] = [:]
        for (level, root) in roots {
            if let waited = root.syncWaited(at: now), waited > patience {
                found[level] = "an fsync in it has not returned within \(patience) (a stalled disk, or a network filesystem whose server is gone)"
            }
        }
        return found
    }

    /// Opens every level directory but those of `unopened` (level: why), which are held once
    /// `adopt` is given them. `resolved`: the levels as `verifyLevelLayout` found them at the
    /// start, against which a level opened later is checked (`claim`).
    public init(_ directories: LevelDirectories, resolved: [ResolvedLevel] = [], unopened: [String: String] = [:]) throws {
        var state = State()
        for level in resolved { state.resolved[level.name] = level }
        for level in directories.names {
            let place = directories.place(of: level)!
            if let why = unopened[level] {
                state.unopened[level] = (place, why)
            } else {
                state.held[level] = try LevelRoot(place)
            }
        }
        self.state = Mutex(state)
    }

    /// Whether `level` is one of this worker's, held or not opened yet.
    public func holds(_ level: String) -> Bool {
        state.withLock { $0.held[level] != nil || $0.unopened[level] != nil }
    }

    /// Where a level not opened yet is; nil once it is held (or when it is not this worker's).
    public func unopenedPlace(_ level: String) -> LevelPlace? {
        state.withLock { $0.unopened[level]?.place }
    }

    /// A level not opened yet stays so, for `why` (and no longer claims its directory).
    public func keepUnopened(_ level: String, because why: String) {
        state.withLock { state in
            guard state.unopened[level] != nil else { return }
            state.unopened[level]?.why = why
            state.resolved[level] = nil
        }
    }

    /// Checks a level not opened yet, as `resolveLevel` found it now, against the levels held and
    /// those opened or being opened since — not the same directory as another, nor inside one,
    /// nor holding one (`checkLevelLayout`; no disk is looked at) — and claims its directory for
    /// it, under one lock: of two levels opened at once for one directory, one is refused.
    public func claim(_ level: ResolvedLevel) throws {
        try state.withLock { state in
            let others = state.resolved.values.filter { $0.name != level.name }.sorted { $0.name < $1.name }
            try checkLevelLayout(others + [level])
            state.resolved[level.name] = level
        }
    }

    /// The levels the worker's checks find out of service now, with why: a move neither opens nor
    /// searches them (`inService`).
    public func markOutOfService(_ levels: [String: String]) {
        state.withLock { $0.outOfService = levels }
    }

    /// Why `level` is not opened yet or out of service as the worker's checks last found it; nil
    /// when neither (no disk is looked at).
    public func markedOutOfService(_ level: String) -> String? {
        state.withLock { Self.marked(level, in: $0) }
    }

    private static func marked(_ level: String, in state: State) -> String? {
        state.unopened[level]?.why ?? state.outOfService[level]
    }

    /// The held root of a level at `place` for a move; nil when it is not one of this worker's
    /// levels (or another directory). Throws `level_unavailable` for a level not opened yet or
    /// out of service: a move does not open it by its path, nor wait on a disk that does not answer.
    public func inService(_ place: LevelPlace) throws -> LevelRoot? {
        let (root, why) = state.withLock { ($0.held[place.level], Self.marked(place.level, in: $0)) }
        if let why {
            throw MoveError(.levelUnavailable, "level '\(place.level)' is out of service for this worker: \(why); nothing is moved into or out of it until it is back")
        }
        guard let root, root.directory == place.directory else { return nil }
        try root.requireNotWithdrawn()
        return root
    }

    /// Holds `root`, opened since the start, for its level from now on — only for a level not
    /// opened yet.
    public func adopt(_ root: LevelRoot) {
        state.withLock { state in
            guard state.unopened.removeValue(forKey: root.level) != nil else { return }
            state.held[root.level] = root
        }
    }

    /// Holds `root` for its level from now on instead of the directory held so far — only for a
    /// level withdrawn since the start (`LevelRoot.withdraw`), in which nothing was ever done.
    public func replace(_ root: LevelRoot) {
        state.withLock { state in
            guard state.held[root.level]?.withdrawn != nil else { return }
            state.held[root.level] = root
            // (A level opened later is checked against this directory now.)
            state.resolved[root.level]?.device = root.identity.device
            state.resolved[root.level]?.inode = root.identity.inode
        }
    }

    /// The levels whose path no longer names the directory held, that are withdrawn or that are
    /// not opened yet, with why.
    public func unavailable() -> [String: String] {
        var found: [String: String] = [:]
        for level in roots.keys { found[level] = unavailable(level) }
        for (level, unopened) in state.withLock({ $0.unopened }) { found[level] = unopened.why }
        return found
    }

    /// Why `level` is out of service: its path no longer names the directory held, it is
    /// withdrawn, or it is not opened yet; nil when it is in service (or not this worker's).
    public func unavailable(_ level: String) -> String? {
        let (root, unopened) = state.withLock { ($0.held[level], $0.unopened[level]) }
        if let unopened { return unopened.why }
        guard let root else { return nil }
        if let reason = root.withdrawn { return reason }
        do {
            return try root.stillInPlace() ? nil : "\(root.directory) is no longer the directory opened at start (unmounted, remounted or replaced)"
        } catch {
            return "\(error)"
        }
    }
}
