/// The contents, level, level policy and relocations tables as the application reads and writes
/// them: one connection's calls, blocking (run them on `BlockingExecutor`). SQLStore implements it
/// over PostgreSQL, MySQL/MariaDB and SQLite; RelocatorTesting in memory.
///
/// `commit` is the only way a content's level changes once the content exists: moves, reconcile's
/// fixes and an operator's edits all go through it, ordered by the generation each carries.
public protocol ContentStoring: AnyObject {
    /// Where the store is, as error messages name it (`postgres 127.0.0.1:5432/relocator`).
    var location: String { get }

    func content(cid: Int64) throws -> Content?
    func content(filename: String) throws -> Content?
    /// The contents of many cids at once (those that exist).
    func contents(cids: [Int64]) throws -> [Int64: Content]
    /// Contents in cid order, of one level when `level` is given.
    func contents(limit: Int, offset: Int, level: String?) throws -> [Content]
    /// Adds contents or changes their filenames, in one transaction; an existing content keeps its
    /// level (only a commit changes it: the application records an operator's change of a level as
    /// one). A filename that belongs to another content is refused. Returns how many rows were
    /// written.
    func put(_ contents: [Content]) throws -> Int
    /// Removes a content's row (its relocations stay as history); false when there was none.
    func remove(cid: Int64) throws -> Bool

    /// Records verified moves (and operator's level changes): each content takes the level of its
    /// newest entry, unless a newer generation was recorded before; every entry is a relocation row.
    func commit(_ entries: [CommitEntry]) throws
    /// The latest relocations, newest first; of one content only when `cid` is given.
    func relocations(cid: Int64?, limit: Int) throws -> [Relocation]
    /// Every relocation of one content, oldest first.
    func history(cid: Int64) throws -> [Relocation]
    /// A page of the relocations, newest first (of one content when `cid` is given): at most
    /// `limit` rows older than `before` (the `next` of the page before), the total, and the
    /// `before` of the next page (nil on the last).
    func relocationsPage(cid: Int64?, before: Int64?, limit: Int) throws -> (rows: [Relocation], total: Int, next: Int64?)
    /// Moves and bytes from level to level committed in the last `seconds`, among the newest
    /// `newest` rows; `complete` is false when there may be more.
    func recentMoves(withinSeconds seconds: Int, newest: Int) throws -> (counts: [LevelMoves], complete: Bool)

    func levels() throws -> [LevelRange]
    /// Writes `ranges` into an empty level table; refuses one that has rows.
    func seed(_ ranges: [LevelRange]) throws
    func setRange(level: String, min: Int64, max: Int64, force: Bool) throws -> LevelRangeEdit
    /// Raises a level's `max_counts` to `count` when it is lower.
    func raiseMaxCounts(level: String, to count: Int64) throws -> MaxCountsRaise
    func policies() throws -> [String: LevelPolicy]
    func setPolicy(level: String, _ edit: LevelPolicy.Edit) throws -> LevelPolicy

    /// Nil when the schema holds every migration this binary knows; otherwise what to do
    /// (`schema at 0002, this binary needs 0005: run relocator migrate`).
    func schemaProblem() throws -> String?

    func close()
}

/// Stores for the application: a connection of a pool for an async caller, or one of its own for
/// a loop on a blocking thread (the committer, the rebalancer, reconcile).
public protocol StoreGateway: Sendable {
    /// Runs `body` with a store on a blocking thread.
    func withStore<T: Sendable>(_ body: @escaping @Sendable (any ContentStoring) throws -> T) async throws -> T
    /// A store of the caller's own, for a blocking loop; the caller closes it.
    func open() throws -> any ContentStoring
    /// Where the store is, as error messages name it.
    var location: String { get }
    func close()
}

/// An error that a later attempt may not meet (a connection lost, a deadlock, a failover): loops
/// wait and try again rather than give up.
public protocol TransientFailure: Error {
    var isTransient: Bool { get }
}
