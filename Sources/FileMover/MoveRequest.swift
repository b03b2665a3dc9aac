import RelocatorCore

/// A level and its directory on this machine.
public struct LevelPlace: Sendable, Equatable, CustomStringConvertible {
    public var level: String
    public var directory: String

    public init(level: String, directory: String) {
        self.level = level
        self.directory = directory
    }

    /// `gold (/data/ssd)`
    public var description: String { "\(level) (\(directory))" }
}

extension LevelDirectories {
    /// The place of `level`, nil for a level without a directory here.
    public func place(of level: String) -> LevelPlace? {
        directory(of: level).map { LevelPlace(level: level, directory: $0) }
    }
}

/// One move: `<source>/<filename>` to `<target>/<filename>`.
public struct MoveRequest: Sendable {
    public var filename: Filename
    /// Where the database says the file is.
    public var source: LevelPlace
    public var target: LevelPlace
    /// Every other level, searched (safely, like the source) when the file is not at `source`.
    public var others: [LevelPlace]
    /// The job: its content's lock, and its temporary file's name (`PartName`).
    public var cid: Int64
    public var gen: Int64
    /// The checksum an earlier delivery recorded before it published the file, if any: a
    /// published file whose source is gone must match it (hashed with the algorithm it names).
    public var expectedChecksum: Checksum?

    public init(filename: Filename, source: LevelPlace, target: LevelPlace, others: [LevelPlace] = [],
                cid: Int64, gen: Int64, expectedChecksum: Checksum? = nil) {
        self.filename = filename
        self.source = source
        self.target = target
        self.others = others
        self.cid = cid
        self.gen = gen
        self.expectedChecksum = expectedChecksum
    }
}

/// What the worker learns and decides during a move. Every hook is optional.
public struct MoveHooks {
    /// Called, under the content's lock, with the verified checksum and size before the file gets
    /// its final name and before any copy is removed (the worker records them in the job if the
    /// job is still this delivery's, so a later delivery can check what it finds). Throwing aborts
    /// the move — `MoveError(.leaseLost, …)` when the job is no longer this delivery's — and removes
    /// the temporary file: nothing is published or removed.
    public var willPublish: (Checksum, Int64) throws -> Void
    /// Called once the source is removed and its directory synced.
    public var didRemoveSource: () -> Void
    /// Called per chunk while hashing or copying: bytes done, bytes in all.
    public var progress: (_ done: Int64, _ total: Int64) -> Void
    /// Called across filesystems before each chunk is written, with its size; may block (a
    /// bandwidth limit pays for the bytes before they reach the disk).
    public var willWrite: (_ bytes: Int64) -> Void
    /// Polled between chunks; true stops the move with `MoveError(.cancelled, …)`, before anything
    /// is published (the temporary file is removed).
    public var shouldStop: () -> Bool
    /// Told how long each phase of the move took (a phase may be told more than once per move);
    /// nil when nobody asks, and then the move reads no clock for it.
    public var phase: ((MovePhase, Duration) -> Void)?
    /// True: the source's directory is not fsynced by the move; the result's `pendingSync` is,
    /// and the move counts as done only once its caller has synced it.
    public var deferSourceDirectorySync: Bool

    public init(willPublish: @escaping (Checksum, Int64) throws -> Void = { _, _ in },
                didRemoveSource: @escaping () -> Void = {},
                progress: @escaping (_ done: Int64, _ total: Int64) -> Void = { _, _ in },
                willWrite: @escaping (_ bytes: Int64) -> Void = { _ in },
                shouldStop: @escaping () -> Bool = { false }, phase: ((MovePhase, Duration) -> Void)? = nil,
                deferSourceDirectorySync: Bool = false) {
        self.phase = phase
        self.deferSourceDirectorySync = deferSourceDirectorySync
        self.willPublish = willPublish
        self.didRemoveSource = didRemoveSource
        self.progress = progress
        self.willWrite = willWrite
        self.shouldStop = shouldStop
    }
}

public struct MoveResult: Sendable, Hashable {
    /// How the file was moved (`MoveMethod`: linked, copied, already in place).
    public typealias Method = MoveMethod

    public var bytes: Int64
    public var checksum: Checksum
    public var method: Method
    /// The level the file was taken from: the request's source, or another level where it was
    /// found (or the target, when it was already in place).
    public var foundIn: String
    /// With `MoveHooks.deferSourceDirectorySync`: the source's directory, still to be fsynced.
    public var pendingSync: PendingDirectorySync?

    public init(bytes: Int64, checksum: Checksum, method: Method, foundIn: String) {
        self.bytes = bytes
        self.checksum = checksum
        self.method = method
        self.foundIn = foundIn
    }
}

/// The move as the worker sees it; `FileMover` is the real one.
public protocol FileMoving: Sendable {
    func move(_ request: MoveRequest, hooks: MoveHooks) throws -> MoveResult
}

/// `directory/relative`, one slash between.
func join(_ directory: String, _ relative: String) -> String {
    directory.hasSuffix("/") ? directory + relative : directory + "/" + relative
}
