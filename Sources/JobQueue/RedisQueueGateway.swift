import RedisClient
import RelocatorCore

/// The queue over Redis for async callers: a pool of connections for sessions, and a pipeliner
/// through which concurrent submissions share round trips.
public final class RedisQueueGateway: QueueGateway {
    public let queue: JobQueue
    public let pool: RedisPool
    private let pipeliner: RedisPipeliner
    public let address: String

    public init(queue: JobQueue, pool: RedisPool) {
        self.queue = queue
        self.pool = pool
        pipeliner = RedisPipeliner(url: pool.url, replication: pool.replication)
        address = pool.url.address
    }

    public var shardCount: Int { queue.keys.shardCount }

    public func withSession<T: Sendable>(replicated: Bool, _ body: @escaping @Sendable (any JobQueueSession) throws -> T) async throws -> T {
        let queue = self.queue
        return try await pool.withConnection { redis in
            // The pool's connection is lent, not closed.
            let session = RedisJobQueue(queue: queue, redis: redis)
            return replicated ? try redis.replicated { try body(session) } : try body(session)
        }
    }

    public func submit(_ request: SubmitRequest) async throws -> SubmitResult {
        let reply = try await pipeliner.call(queue.submitCall(request))
        return try queue.submitResult(from: reply, address: address)
    }

    public func identity() async -> String? {
        let cluster = pool.url.topology == .cluster
        do {
            let reply = try await pool.send(cluster ? RedisCommand("CLUSTER", "INFO") : RedisCommand("INFO", "server"))
            let key = cluster ? "cluster_current_epoch:" : "run_id:"
            return reply.string?.split(whereSeparator: \.isNewline).first { $0.hasPrefix(key) }.map(String.init)
        } catch {
            return nil
        }
    }

    public func problem() async -> String? {
        let queue = self.queue
        do {
            let reply = try await pool.send("PING")
            guard reply == .status("PONG") else { return "unexpected answer to PING" }
        } catch {
            return "unreachable (\((error as? OutageDescribing)?.outage ?? "no answer"))"
        }
        do {
            try await pool.withConnection { try queue.checkWritable(on: $0) }
            return nil
        } catch let error as RedisError where error.code == .server {
            return "refuses writes (\(error.message.prefix(120)))"
        } catch {
            return "unreachable (\((error as? OutageDescribing)?.outage ?? "no answer"))"
        }
    }

    public func close() {
        pipeliner.close()
        pool.close()
    }
}
