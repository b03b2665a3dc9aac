import JobQueue
import RedisClient
import RelocatorApp
import RelocatorCore
import SQLStore

/// The use cases that read the database and the queue in turn on one thread — placement's plan
/// and reconcile — and so need the application wired over Redis and SQL: each gets a Redis
/// connection of its own (closed after) and a database connection of the store's pool.
extension App {
    /// What placement would move now and why, and each level's fill after it. `full` also lists
    /// the jobs already queued, deferred, retrying or moving (`relocator plan`); the dashboard
    /// leaves them out.
    public func plan(full: Bool = false) async throws -> Planner.Plan {
        try await computePlan(full: full)
    }

    /// The plan as `plan()` makes it, at most `maxAge` old: the dashboard's placement page, read by
    /// every open browser every few seconds, walks the database and the queue once per `maxAge`.
    public func recentPlan(maxAge: Duration = .seconds(2)) async throws -> Planner.Plan {
        try await recent.value("plan", maxAge: maxAge) { try await computePlan(full: false) }
    }

    private func computePlan(full: Bool) async throws -> Planner.Plan {
        let (sql, redis) = try wired("the plan")
        let jobQueue = redis.queue, halfLife = self.halfLife, url = redis.pool.url
        return try await sql.pool.withDatabase { database in
            let connection = RedisConnection(url: url)
            defer { connection.close() }
            return try Planner(queue: RedisJobQueue(queue: jobQueue, redis: connection), database: database, halfLife: halfLife).plan(full: full)
        }
    }

    /// How many contents each level holds.
    public func contentsByLevel() async throws -> [String: Int64] {
        let (sql, _) = try wired("the contents by level")
        return try await sql.pool.withDatabase { try ContentStore(database: $0).countsByLevel() }
    }

    /// What a reconcile run found and left alone.
    public struct ReconcileReport: Sendable, Equatable {
        public var findings: [Finding]
        /// Contents left alone because a job was in flight.
        public var skipped: Int
        /// Contents left alone because the database places them on a level out of service.
        public var skippedUnavailable: Int
        /// Contents on other hosts' levels with no file here, left to those hosts' reconcile.
        public var skippedElsewhere: Int = 0
    }

    /// Compares the database with the disks and the queue; with `settings.fix`, repairs what is
    /// safe (`Reconciler`). Each finding and the progress are passed on as they are made.
    public func reconcile(_ settings: Reconciler.Settings, onFinding: @escaping @Sendable (Finding) -> Void = { _ in },
                          onProgress: @escaping @Sendable (_ done: Int, _ total: Int) -> Void = { _, _ in }) async throws -> ReconcileReport {
        let (sql, redis) = try wired("reconcile")
        let jobQueue = redis.queue, url = redis.pool.url
        return try await sql.pool.withDatabase { database in
            let session = RedisJobQueue(queue: jobQueue, redis: RedisConnection(url: url))
            defer { session.close() }
            var reconciler = try Reconciler(settings: settings, session: session, store: ContentStore(database: database),
                                            onFinding: onFinding, onProgress: onProgress)
            try reconciler.run()
            return ReconcileReport(findings: reconciler.findings, skipped: reconciler.skipped, skippedUnavailable: reconciler.skippedUnavailable,
                                   skippedElsewhere: reconciler.skippedElsewhere)
        }
    }

    /// The database and Redis this application is wired over; `what` names the use case that needs them.
    private func wired(_ what: String) throws -> (SQLStoreGateway, RedisQueueGateway) {
        guard let sql = store as? SQLStoreGateway, let redis = queue as? RedisQueueGateway else {
            throw AppError.unavailable("\(what) needs the database and Redis (this process has neither)")
        }
        return (sql, redis)
    }
}
