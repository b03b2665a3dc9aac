import JobQueue
import RedisClient
import RelocatorApp
import RelocatorCore
import RelocatorServices
import SQLStore

extension App {
    /// What placement would move now and why, and each level's fill after it (as `relocator plan`,
    /// without the jobs already in flight). The planner reads SQL and Redis in turn on one thread,
    /// so it needs the application wired over them; it gets a Redis connection of its own, closed after.
    func plan() async throws -> Planner.Plan {
        guard let sql = store as? SQLStoreGateway, let redis = queue as? RedisQueueGateway else {
            throw AppError.unavailable("the plan needs the database and Redis (this process has neither)")
        }
        let jobQueue = redis.queue, halfLife = self.halfLife, url = redis.pool.url
        return try await sql.pool.withDatabase { database in
            let connection = RedisConnection(url: url)
            defer { connection.close() }
            return try Planner(queue: RedisJobQueue(queue: jobQueue, redis: connection), database: database, halfLife: halfLife).plan(full: false)
        }
    }
}
