import JobQueue
import RedisClient
import RelocatorCore
import Testing
import TestSupport

/// A queue on the real Redis under a key prefix of the test's own, and a connection to it;
/// `cleanUp` removes every key under the prefix and closes the connection.
struct RedisTestQueue {
    let queue: JobQueue
    let url: RedisURL
    let redis: RedisConnection

    init(_ name: String) throws {
        queue = JobQueue(keys: try KeySchema(prefix: "{\(TestEnvironment.uniqueName(name))}"))
        url = try TestEnvironment.redisURL()
        redis = RedisConnection(url: url)
    }

    /// The seam over this queue's connection.
    var session: RedisJobQueue { RedisJobQueue(queue: queue, redis: redis) }
    var driver: RedisJobQueueDriver { RedisJobQueueDriver(queue: queue, url: url) }

    func cleanUp() {
        do {
            for name in try redis.scan(match: queue.keys.control.prefix + "*") { try redis.send("DEL", name) }
        } catch {
            Issue.record("cannot remove the test's keys: \(error)")
        }
        redis.close()
    }
}
