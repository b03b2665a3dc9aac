import RelocatorCore

/// Which level of a move a name is in: the level the database names, the target, or one of the
/// other levels searched when the file is not where the database says.
public enum MoveSide: Hashable, Sendable, CustomStringConvertible {
    case source
    case target
    case other(Int)

    public var description: String {
        switch self {
        case .source: return "source"
        case .target: return "target"
        case .other(let index): return "other\(index)"
        }
    }
}

/// Everything a move does to the world, one action at a time: the content's lock, the names of one
/// filename in the levels, the files behind them, and the job's record. `MoveMachine` decides
/// which action comes next; `LevelWorld` performs them on real level directories, and the
/// interleaving explorer's world performs them in memory, so both run the same transition code.
///
/// A world serves one delivery of one job (one filename, one cid and generation); several
/// deliveries of a job act on the same files through worlds of their own.
public protocol MoveWorld: AnyObject {
    /// One filename's place in one level: its directory, resolved beneath the level, and its name.
    associatedtype Entry
    /// A regular file opened for reading (or, for the copy, for writing), with its identity when
    /// opened.
    associatedtype File
    /// A file's identity and the parts of its status that change when it is written to.
    associatedtype Identity: Equatable

    /// How many other levels are searched when the file is not at the source.
    var otherCount: Int { get }
    /// The level's name, for the result.
    func level(_ side: MoveSide) -> String
    /// The checksum an earlier delivery recorded before it published the file, if any.
    var expectedChecksum: Checksum? { get }
    /// How messages name an entry (`gold/movies/a.mp4`).
    func display(_ entry: Entry) -> String
    /// The file is on no level's disk: the error naming every place looked.
    func missingError() -> MoveError

    // MARK: The content's lock

    /// Takes the content's lock in the source and target levels, in a fixed order, without
    /// waiting; false (holding none) when another delivery holds it. While it is held, no other
    /// process that respects the lock changes this content's names in these levels.
    func lockContent() throws -> Bool
    /// Takes it in one more level (where the file was found instead of at the source); false when
    /// another delivery holds it there.
    func lockAlso(_ side: MoveSide) throws -> Bool
    /// Releases it in every level.
    func unlockContent()
    /// Throws `level_unavailable` when a level's directory is no longer the one checked at start
    /// (unmounted, remounted, replaced).
    func requireLevelsInPlace() throws

    // MARK: Names and files

    /// The filename's entry in a level; nil when a directory on its way is missing (`create`
    /// false) or the level has no directory here. With `create`, the directories are made (durably)
    /// or the call throws.
    func entry(_ side: MoveSide, create: Bool) throws -> Entry?
    /// True when the entry names a regular file; false when the name is absent. Throws
    /// `unsafe_path` for a link and `destination_conflict` for anything else.
    func holdsRegularFile(_ entry: Entry) throws -> Bool
    /// Opens the regular file the entry names; nil when the name is absent.
    func open(_ entry: Entry) throws -> File?
    func entry(of file: File) -> Entry
    /// The file's identity when it was opened.
    func identity(of file: File) -> Identity
    /// The file's identity now (through its descriptor).
    func currentIdentity(of file: File) throws -> Identity
    func size(_ identity: Identity) -> Int64
    /// The same file and the same bytes (size and modification time), whatever its change time.
    func sameContent(_ a: Identity, _ b: Identity) -> Bool
    func isSameFile(_ a: Identity, _ b: Identity) -> Bool
    /// True when the entry's name still names `identity`'s file, unchanged.
    func names(_ entry: Entry, _ identity: Identity) throws -> Bool
    /// Both entries in one directory reached through two level names: throws `unsafe_path`.
    func refuseSameDirectory(_ a: Entry, _ b: Entry) throws
    /// The file and the entry's directory are on one filesystem.
    func sameFilesystem(_ file: File, _ entry: Entry) throws -> Bool

    /// The source's checksum and size (reporting progress, honouring the stop request).
    func hashSource(_ file: File) throws -> (Checksum, Int64)
    /// Another file's checksum with `algorithm`.
    func hash(_ file: File, _ algorithm: ChecksumAlgorithm) throws -> (Checksum, Int64)
    /// The checksum moves compute.
    var algorithm: ChecksumAlgorithm { get }
    /// The file is as it was at `reference`, and its name still names it: throws `source_changed`.
    func requireUnchanged(_ file: File, since reference: Identity) throws
    /// The entry's directory is still where its level says (no link swapped in): throws otherwise.
    func requireInPlace(_ entry: Entry) throws

    // MARK: The job

    /// Records the verified checksum and size in the job while it is still this delivery's (the
    /// token check). False: it is not; nothing may be published or removed.
    func record(_ checksum: Checksum, _ bytes: Int64) throws -> Bool

    // MARK: Changing names (only while the content's lock is held)

    /// Gives the open file the entry's name without replacing one.
    func link(_ file: File, as entry: Entry) throws -> LinkOutcome
    /// Renames the source's name to the entry's without replacing one; false when the name
    /// appeared meanwhile. Checks the source's directory and the source first.
    func rename(_ file: File, to entry: Entry) throws -> RenameOutcome
    /// Removes the source's name: only while its directory is where its level says, it is unchanged
    /// since `reference` and its name still names it, and never when it is `keeping`'s file itself.
    /// When the source changed and `discarding` is given, that copy at `keeping` (what this move
    /// published) is removed instead, so there is always one copy, and the error says so.
    func removeSource(_ file: File, since reference: Identity, keeping: Entry, discarding: Identity?) throws
    /// Removes what this move published at `entry` while the name still names `identity`'s file
    /// and the source is still there; says what it did.
    func discard(_ entry: Entry, _ identity: Identity, keeping source: Entry) -> String
    func syncDirectory(of entry: Entry) throws
    /// The source's directory: fsynced now, or left to the caller (`MoveHooks.deferSourceDirectorySync`).
    func syncSourceDirectory(of entry: Entry) throws

    // MARK: The copy across filesystems

    /// Removes every temporary file of this content in the target level (earlier deliveries').
    func removeStaleTemporaries() throws
    /// Creates this job's temporary file exclusively.
    func createTemporary() throws -> File
    /// Reserves the blocks and copies the source into it, hashing in flight.
    func copy(_ source: File, into temporary: File) throws -> Checksum
    /// The source's mode, owner and times on the copy (before its fsync, which keeps them too;
    /// reading the copy back afterwards leaves its access time as set).
    func keepAttributes(of source: File, on copy: File) throws
    /// The file's data and attributes made durable.
    func syncFile(_ file: File) throws
    /// Reads the file back from the device: its checksum and size.
    func readBack(_ file: File) throws -> (Checksum, Int64)
    /// Gives the verified temporary file the entry's name by renaming it, without replacing one
    /// (where hard links are refused); false when the temporary name no longer names it.
    func renameTemporary(_ file: File, to entry: Entry) throws -> RenameOutcome
    /// Removes the temporary file's name while it names this delivery's file.
    func removeTemporary(_ file: File)

    // MARK: Tests and measurements

    func fault(_ step: MoveStep) throws
    func lap(_ phase: MovePhase)
}

public enum LinkOutcome: Equatable, Sendable {
    case linked
    /// The name exists.
    case exists
    /// The two directories are on different mounts of one filesystem (EXDEV).
    case crossDevice
    /// Hard links refused (another user's file under `fs.protected_hardlinks`, a filesystem
    /// without them).
    case refused
}

public enum RenameOutcome: Equatable, Sendable {
    case renamed
    case exists
    case crossDevice
}
