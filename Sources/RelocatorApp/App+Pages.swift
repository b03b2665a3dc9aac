import RelocatorCore

/// The paged lists and the dashboard's other reads: only a page is read however long a list is.
extension App {
    public static let cursorMessage = "cursor is not one this API gave out (use next_cursor of the page before)"

    /// A page of the dead letters, newest job first. A cursor that is no job's id is refused (it
    /// would name no job, and the page after it be empty).
    public func deadPage(_ request: PageRequest) async throws -> Page<DeadLetter> {
        if let cursor = request.cursor, JobID(cursor) == nil { throw AppError.badRequest(Self.cursorMessage) }
        return try await queue.withSession { try $0.deadPage(request) }
    }

    /// A page of the retrying or the deferred jobs, soonest due first. A cursor that is not one
    /// this application gave out is refused.
    public func scheduledPage(_ schedule: Schedule, _ request: PageRequest) async throws -> Page<ScheduledJob> {
        if let cursor = request.cursor, ScheduleOrder(cursor: cursor) == nil { throw AppError.badRequest(Self.cursorMessage) }
        return try await queue.withSession { try $0.scheduledPage(schedule, request) }
    }

    /// A page of the committed moves, newest first (of one content when `cid` is given).
    public func relocationsPage(cid: Int64?, _ request: PageRequest) async throws -> Page<Relocation> {
        let before = try request.cursor.map { cursor -> Int64 in
            guard let id = Int64(cursor), id > 0 else { throw AppError.badRequest(Self.cursorMessage) }
            return id
        }
        let page = try await relocationRows(cid: cid, before: before, limit: request.limit, withFilenames: false)
        return Page(items: page.rows, total: page.total, next: page.next.map(String.init))
    }

    /// Moves (and their bytes) and commits per minute over the last `window` minutes, as the
    /// workers and committers counted them in the queue.
    public func throughput(window: Int = 60) async throws -> Throughput {
        let now = clock()
        return try await queue.withSession { try $0.throughput(now: now, window: window) }
    }

    /// Moves and bytes from level to level committed in the last hour.
    public func recentMoves() async throws -> (counts: [LevelMoves], complete: Bool) {
        try await store.withStore { try $0.recentMoves(withinSeconds: 3600, newest: 20_000) }
    }
}
