import RelocatorCore

/// A small pool of `RedisConnection`s for concurrent async callers: at most `size` connections, each
/// blocking hiredis call on a Dispatch thread (see `BlockingPool`), never on an event loop.
public final class RedisPool: Sendable {
    public let url: RedisURL
    /// What `RedisConnection.replicated` waits for on this pool's connections.
    public let replication: RedisReplication?
    private let pool: BlockingPool<RedisConnection>

    public init(url: RedisURL, size: Int = 4, connectTimeout: Duration = .seconds(2), commandTimeout: Duration = .seconds(5),
                replication: RedisReplication? = nil) {
        self.url = url
        self.replication = replication
        let address = url.address
        pool = BlockingPool(
            size: size,
            make: { RedisConnection(url: url, connectTimeout: connectTimeout, commandTimeout: commandTimeout, replication: replication) },
            close: { $0.close() },
            closedError: { RedisError(code: .closed, address: address, message: "the connection pool is closed") }
        )
    }

    public var size: Int { pool.size }

    /// Runs `body` with a connection of its own, on a thread where blocking is allowed.
    public func withConnection<T: Sendable>(_ body: @escaping @Sendable (RedisConnection) throws -> T) async throws -> T {
        // A connection that lost its socket reconnects by itself on the next call: always reuse it.
        try await pool.withResource(body)
    }

    @discardableResult
    public func send(_ command: RedisCommand) async throws -> RedisReply {
        try await withConnection { try $0.send(command) }
    }

    @discardableResult
    public func send(_ arguments: any RedisArgumentConvertible...) async throws -> RedisReply {
        let command = RedisCommand(arguments)
        return try await withConnection { try $0.send(command) }
    }

    public func pipeline(_ commands: [RedisCommand]) async throws -> [RedisReply] {
        try await withConnection { try $0.pipeline(commands) }
    }

    @discardableResult
    public func evalScript(_ script: RedisScript, keys: [String] = [], arguments: [String] = []) async throws -> RedisReply {
        try await withConnection { try $0.evalScript(script, keys: keys, arguments: arguments) }
    }

    /// Closes idle connections and fails waiting and later callers.
    public func close() { pool.close() }
}
