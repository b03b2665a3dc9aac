import Dispatch
import RelocatorCore
import Synchronization

/// Sends the calls of many concurrent callers through one connection, pipelined: a thread of its
/// own takes everything that is waiting, writes it in one go and reads the replies. Under load the
/// batches grow by themselves, so a burst of requests costs a few round trips and thread wake-ups
/// instead of one each (the API's hot path uses it for submissions). Every call is taken for a
/// write: with `replication`, a batch's replies are given only after `WAIT`.
public final class RedisPipeliner: Sendable {
    private struct Pending {
        let call: RedisCall
        /// Resumed exactly once: with its reply by the thread, or with an error by `close`.
        let continuation: UnsafeContinuation<RedisReply, any Error>
    }

    private struct State: ~Copyable {
        var pending: [Pending] = []
        var closed = false
    }

    public let url: RedisURL
    /// `host:port` for error messages, built once.
    private let address: String
    private let state = Mutex(State())
    private let wake = DispatchSemaphore(value: 0)
    /// Used by the pipeliner's thread only.
    private let connection: RedisConnection

    public init(url: RedisURL, connectTimeout: Duration = .seconds(2), commandTimeout: Duration = .seconds(5),
                replication: RedisReplication? = nil) {
        self.url = url
        self.address = url.address
        self.connection = RedisConnection(url: url, connectTimeout: connectTimeout, commandTimeout: commandTimeout,
                                          replication: replication)
        // A dedicated thread: it waits for work for as long as the process runs.
        BlockingExecutor.thread(named: "redis-pipeliner") { [self] in run() }
    }

    /// One call; its error reply is thrown as a `RedisError` (`.server`).
    public func call(_ call: RedisCall) async throws -> RedisReply {
        try await withUnsafeThrowingContinuation { continuation in
            let accepted = state.withLock { state -> Bool in
                if state.closed { return false }
                state.pending.append(Pending(call: call, continuation: continuation))
                return true
            }
            if accepted {
                wake.signal()
            } else {
                continuation.resume(throwing: RedisError(code: .closed, address: address, message: "the pipeliner is closed"))
            }
        }
    }

    /// Fails what is waiting and stops the thread.
    public func close() {
        let waiting = state.withLock { state -> [Pending] in
            state.closed = true
            defer { state.pending = [] }
            return state.pending
        }
        for item in waiting {
            item.continuation.resume(throwing: RedisError(code: .closed, address: address, message: "the pipeliner is closed"))
        }
        wake.signal()
    }

    private func run() {
        while true {
            wake.wait()
            let (batch, closed) = state.withLock { state -> ([Pending], Bool) in
                defer { state.pending = [] }
                return (state.pending, state.closed)
            }
            if batch.isEmpty {
                if closed { break }
                continue
            }
            do {
                // With a replica count, a batch is answered once the replicas hold it (one WAIT
                // per batch and node, on the connection that wrote it).
                let replies = try connection.replicated { try connection.pipeline(calls: batch.map(\.call)) }
                for (item, reply) in zip(batch, replies) {
                    // The error's words (the command's name) are built only for an error reply.
                    if case .error = reply {
                        item.continuation.resume(with: Result { try reply.throwingServerError(address: address, command: item.call.name) })
                    } else {
                        item.continuation.resume(returning: reply)
                    }
                }
            } catch {
                for item in batch { item.continuation.resume(throwing: error) }
            }
        }
        connection.close()
    }
}
