import Dispatch
import RelocatorCore
import Synchronization

/// A small pool of `RedisConnection`s for concurrent async callers.
///
/// Each blocking hiredis call runs on a Dispatch thread, never on the caller's thread, so an event
/// loop or Swift's cooperative pool is not blocked. At most `size` connections exist; a caller that
/// finds none free waits (suspended, not blocking a thread) until one is handed back.
public final class RedisPool: Sendable {
    public let url: RedisURL
    public let size: Int
    private let connectTimeout: Duration
    private let commandTimeout: Duration
    private let queue = DispatchQueue(label: "relocator.redis-pool", attributes: .concurrent)

    private struct State: ~Copyable {
        var idle: [RedisConnection] = []
        var created = 0
        var waiters: [CheckedContinuation<RedisConnection, any Error>] = []
        var closed = false
    }

    private let state = Mutex(State())

    public init(url: RedisURL, size: Int = 4, connectTimeout: Duration = .seconds(2), commandTimeout: Duration = .seconds(5)) {
        precondition(size > 0, "a pool needs at least one connection")
        self.url = url
        self.size = size
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
    }

    /// Runs `body` with a connection of its own, on a thread where blocking is allowed.
    public func withConnection<T: Sendable>(_ body: @escaping @Sendable (RedisConnection) throws -> T) async throws -> T {
        let connection = try await acquire()
        defer { release(connection) }
        return try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try body(connection) })
            }
        }
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
    public func close() {
        let (idle, waiters) = state.withLock { state -> ([RedisConnection], [CheckedContinuation<RedisConnection, any Error>]) in
            state.closed = true
            defer { state.idle = []; state.waiters = [] }
            return (state.idle, state.waiters)
        }
        for connection in idle { connection.close() }
        for waiter in waiters { waiter.resume(throwing: closedError) }
    }

    private var closedError: RedisError {
        RedisError(code: .closed, address: url.address, message: "the connection pool is closed")
    }

    private enum Acquired {
        case connection(RedisConnection)
        case create
        case closed
        case wait
    }

    private func acquire() async throws -> RedisConnection {
        let outcome = state.withLock { state -> Acquired in
            if state.closed { return .closed }
            if let connection = state.idle.popLast() { return .connection(connection) }
            if state.created < size {
                state.created += 1
                return .create
            }
            return .wait
        }
        switch outcome {
        case .connection(let connection): return connection
        case .create: return RedisConnection(url: url, connectTimeout: connectTimeout, commandTimeout: commandTimeout)
        case .closed: throw closedError
        case .wait:
            return try await withCheckedThrowingContinuation { continuation in
                // The pool may have changed since the first look: re-check under the lock.
                let now = state.withLock { state -> Acquired in
                    if state.closed { return .closed }
                    if let connection = state.idle.popLast() { return .connection(connection) }
                    state.waiters.append(continuation)
                    return .wait
                }
                switch now {
                case .connection(let connection): continuation.resume(returning: connection)
                case .closed: continuation.resume(throwing: closedError)
                default: break
                }
            }
        }
    }

    private func release(_ connection: RedisConnection) {
        let waiter = state.withLock { state -> CheckedContinuation<RedisConnection, any Error>? in
            if !state.waiters.isEmpty { return state.waiters.removeFirst() }
            if state.closed {
                return nil
            }
            state.idle.append(connection)
            return nil
        }
        if let waiter {
            waiter.resume(returning: connection)
        } else if state.withLock({ $0.closed }) {
            connection.close()
        }
    }
}
