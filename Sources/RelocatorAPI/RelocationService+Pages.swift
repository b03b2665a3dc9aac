import JobQueue
import RedisClient
import RelocatorCore
import RelocatorServices
import SQLStore

/// The paged lists and the dashboard's other reads: only a page is read however long a list is.
extension RelocationService {
    /// A read of the queue through the seam, on a pooled connection.
    func reading<T: Sendable>(_ body: @escaping @Sendable (any QueueReading) throws -> T) async throws -> T {
        let queue = self.queue
        return try await redis.withConnection { try body(RedisJobQueue(queue: queue, redis: $0)) }
    }

    /// A page of the dead letters, newest job first.
    public func deadPage(_ request: PageRequest) async throws -> Page<DeadLetter> {
        try await reading { try $0.deadPage(request) }
    }

    /// A page of the retrying or the deferred jobs, soonest due first. A cursor that is not one
    /// this API gave out is a 400.
    public func scheduledPage(_ schedule: Schedule, _ request: PageRequest) async throws -> Page<ScheduledJob> {
        if let cursor = request.cursor, ScheduleOrder(cursor: cursor) == nil { throw APIError.badRequest(Self.cursorMessage) }
        return try await reading { try $0.scheduledPage(schedule, request) }
    }

    /// A page of the committed moves, newest first (of one content when `cid` is given).
    public func relocationsPage(cid: Int64?, _ request: PageRequest) async throws -> Page<Relocation> {
        let before = try request.cursor.map { cursor -> Int64 in
            guard let id = Int64(cursor), id > 0 else { throw APIError.badRequest(Self.cursorMessage) }
            return id
        }
        let limit = request.limit
        let page = try await sql.withDatabase { try ContentStore(database: $0).relocationsPage(cid: cid, before: before, limit: limit) }
        return Page(items: page.rows, total: page.total, next: page.next.map(String.init))
    }

    static let cursorMessage = "cursor is not one this API gave out (use next_cursor of the page before)"

    /// Moves (and their bytes) and commits per minute over the last hour, from Redis.
    public func throughput(window: Int = 60) async throws -> Throughput {
        let now = clock()
        return try await reading { try $0.throughput(now: now, window: window) }
    }

    /// Moves and bytes from level to level committed in the last hour (SQL).
    public func recentMoves() async throws -> (counts: [LevelMoves], complete: Bool) {
        try await sql.withDatabase { try ContentStore(database: $0).recentMoves(withinSeconds: 3600) }
    }

    /// What placement would move now and why, and each level's fill after it (as `relocator plan`,
    /// without the jobs already in flight). The planner reads SQL and Redis in turn on one thread:
    /// it gets a Redis connection of its own, closed after.
    public func plan() async throws -> Planner.Plan {
        let queue = self.queue, halfLife = self.halfLife, url = redis.url
        return try await sql.withDatabase { database in
            let connection = RedisConnection(url: url)
            defer { connection.close() }
            return try Planner(queue: RedisJobQueue(queue: queue, redis: connection), database: database, halfLife: halfLife).plan(full: false)
        }
    }
}
