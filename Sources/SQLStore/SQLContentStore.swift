import RelocatorCore

/// `ContentStoring` over one SQL connection (PostgreSQL, MySQL/MariaDB or SQLite).
public final class SQLContentStore: ContentStoring {
    public let database: any SQLDatabase
    private var rows: ContentStore { ContentStore(database: database) }
    private var levelTable: LevelStore { LevelStore(database: database) }

    public init(database: any SQLDatabase) {
        self.database = database
    }

    public var location: String { database.location }

    public func content(cid: Int64) throws -> Content? { try rows.content(cid: cid) }
    public func content(filename: String) throws -> Content? { try rows.content(filename: filename) }
    public func contents(cids: [Int64]) throws -> [Int64: Content] { try rows.contents(cids: cids) }
    public func contents(limit: Int, offset: Int, level: String?) throws -> [Content] {
        try rows.contents(limit: limit, offset: offset, level: level)
    }
    public func put(_ contents: [Content]) throws -> Int { try rows.put(contents) }
    public func remove(cid: Int64) throws -> Bool { try rows.remove(cid: cid) }
    public func commit(_ entries: [CommitEntry]) throws { try rows.commit(entries) }
    public func relocations(cid: Int64?, limit: Int) throws -> [Relocation] { try rows.relocations(cid: cid, limit: limit) }
    public func history(cid: Int64) throws -> [Relocation] { try rows.history(cid: cid) }
    public func relocationsPage(cid: Int64?, before: Int64?, limit: Int) throws -> (rows: [Relocation], total: Int, next: Int64?) {
        try rows.relocationsPage(cid: cid, before: before, limit: limit)
    }
    public func recentMoves(withinSeconds seconds: Int, newest: Int) throws -> (counts: [LevelMoves], complete: Bool) {
        try rows.recentMoves(withinSeconds: seconds, newest: newest)
    }

    public func levels() throws -> [LevelRange] { try levelTable.levels() }
    public func seed(_ ranges: [LevelRange]) throws { try levelTable.seed(ranges) }
    public func setRange(level: String, min: Int64, max: Int64, force: Bool) throws -> LevelRangeEdit {
        try levelTable.setRange(level: level, min: min, max: max, force: force)
    }
    public func raiseMaxCounts(level: String, to count: Int64) throws -> MaxCountsRaise { try levelTable.raiseMaxCounts(level: level, to: count) }
    public func policies() throws -> [String: LevelPolicy] { try levelTable.policies() }
    public func setPolicy(level: String, _ edit: LevelPolicy.Edit) throws -> LevelPolicy { try levelTable.setPolicy(level: level, edit) }

    public func schemaProblem() throws -> String? {
        Self.schemaProblem(try Migrator(database: database, migrations: Migration.embedded(dialect: database.dialect)).status())
    }

    /// Nil when the schema holds every migration this binary knows; otherwise what to do.
    /// `schema at 0002, this binary needs 0005: run relocator migrate`.
    public static func schemaProblem(_ status: MigrationStatus) -> String? {
        if status.isCurrent { return nil }
        guard status.schemaPresent else { return "no schema: run relocator migrate" }
        let have = status.applied.last.map { String($0.prefix(4)) } ?? "no version"
        let need = status.latestKnown.map { String($0.prefix(4)) } ?? "none"
        return "schema at \(have), this binary needs \(need): run relocator migrate"
    }

    public func close() { database.close() }
}

/// Stores over a pool of SQL connections (async callers) and connections of their own (loops).
public final class SQLStoreGateway: StoreGateway {
    public let url: DatabaseURL
    public let pool: SQLPool
    private let access: DatabaseAccess

    public init(url: DatabaseURL, size: Int = 4, access: DatabaseAccess = .readWrite) {
        self.url = url
        self.access = access
        pool = SQLPool(url: url, size: size, access: access)
    }

    public var location: String { url.description }

    public func withStore<T: Sendable>(_ body: @escaping @Sendable (any ContentStoring) throws -> T) async throws -> T {
        try await pool.withDatabase { try body(SQLContentStore(database: $0)) }
    }

    public func open() throws -> any ContentStoring { SQLContentStore(database: try openDatabase(url, access: access)) }

    public func close() { pool.close() }
}

extension SQLError: TransientFailure {}

extension SQLError: OutageDescribing {
    /// What a client is told when the database is out of reach or not ready.
    public var outage: String? {
        switch code {
        case .connectionRefused, .connectionLost, .authenticationFailed, .unknownDatabase:
            return "the database is unreachable; try again later"
        case .timedOut:
            return "a database statement ran past its time limit (\(SessionLimits.answerTimeoutSetting)); try again later"
        case .databaseFileMissing:
            return "the database file does not exist: run `relocator migrate` to create it"
        case .schemaMissing:
            return "the database has no tables yet: run `relocator migrate`"
        case .permissionDenied:
            return "the database refused access (permissions or a read-only database): check the API's database user and file"
        default:
            return nil
        }
    }
}
