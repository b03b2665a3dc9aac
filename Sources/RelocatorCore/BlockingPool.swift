import Dispatch
import Synchronization

/// A pool of at most `size` resources whose calls block (a hiredis or libpq connection) for async
/// callers. Each call runs on a Dispatch thread, never on the caller's thread, so an event loop or a
/// cooperative thread does not block; a caller that finds no free resource waits suspended.
/// Resources are made lazily by `make`, on the blocking thread; `discard` drops one that broke.
public final class BlockingPool<Resource: AnyObject & Sendable>: Sendable {
    public let size: Int
    private let make: @Sendable () throws -> Resource
    private let shutdown: @Sendable (Resource) -> Void
    private let queue: DispatchQueue

    private struct State: ~Copyable {
        var idle: [Resource] = []
        var created = 0
        var waiters: [CheckedContinuation<Resource?, any Error>] = []
        var closed = false
    }

    private let state = Mutex(State())
    private let closedError: @Sendable () -> any Error

    /// - Parameters:
    ///   - make: opens a resource; nil from `acquire` means "make one".
    ///   - close: closes a resource when the pool closes or a resource is discarded.
    ///   - closedError: what callers get once the pool is closed.
    public init(size: Int, label: String, make: @escaping @Sendable () throws -> Resource,
                close: @escaping @Sendable (Resource) -> Void, closedError: @escaping @Sendable () -> any Error) {
        precondition(size > 0, "a pool needs at least one resource")
        self.size = size
        self.make = make
        self.shutdown = close
        self.closedError = closedError
        self.queue = DispatchQueue(label: label, attributes: .concurrent)
    }

    /// Runs `body` with a resource of its own, on a thread where blocking is allowed. When `body`
    /// throws an error for which `isBroken` is true, the resource is closed instead of reused.
    public func withResource<T: Sendable>(isBroken: @escaping @Sendable (any Error) -> Bool = { _ in false },
                                          _ body: @escaping @Sendable (Resource) throws -> T) async throws -> T {
        let reserved = try await acquire()
        let make = self.make
        let outcome: (Result<T, any Error>, Resource?) = await withCheckedContinuation { continuation in
            queue.async {
                let resource: Resource
                do {
                    resource = try reserved ?? make()
                } catch {
                    continuation.resume(returning: (.failure(error), nil))
                    return
                }
                continuation.resume(returning: (Result { try body(resource) }, resource))
            }
        }
        switch outcome {
        case (.success, let resource?): release(resource)
        case (.failure(let error), let resource?) where !isBroken(error): release(resource)
        case (_, let resource): discard(resource)
        }
        return try outcome.0.get()
    }

    /// Closes idle resources and fails waiting and later callers.
    public func close() {
        let (idle, waiters) = state.withLock { state -> ([Resource], [CheckedContinuation<Resource?, any Error>]) in
            state.closed = true
            defer { state.idle = []; state.waiters = [] }
            return (state.idle, state.waiters)
        }
        for resource in idle { shutdown(resource) }
        for waiter in waiters { waiter.resume(throwing: closedError()) }
    }

    private enum Acquired {
        case resource(Resource)
        case make
        case closed
        case wait
    }

    /// A free resource, or nil when the caller may make a new one.
    private func acquire() async throws -> Resource? {
        let outcome = state.withLock { state -> Acquired in
            if state.closed { return .closed }
            if let resource = state.idle.popLast() { return .resource(resource) }
            if state.created < size {
                state.created += 1
                return .make
            }
            return .wait
        }
        switch outcome {
        case .resource(let resource): return resource
        case .make: return nil
        case .closed: throw closedError()
        case .wait:
            return try await withCheckedThrowingContinuation { continuation in
                let now = state.withLock { state -> Acquired in
                    if state.closed { return .closed }
                    if let resource = state.idle.popLast() { return .resource(resource) }
                    if state.created < size {
                        state.created += 1
                        return .make
                    }
                    state.waiters.append(continuation)
                    return .wait
                }
                switch now {
                case .resource(let resource): continuation.resume(returning: resource)
                case .make: continuation.resume(returning: nil)
                case .closed: continuation.resume(throwing: closedError())
                case .wait: break
                }
            }
        }
    }

    private func release(_ resource: Resource) {
        let (waiter, closed) = state.withLock { state -> (CheckedContinuation<Resource?, any Error>?, Bool) in
            if !state.waiters.isEmpty { return (state.waiters.removeFirst(), false) }
            if state.closed { return (nil, true) }
            state.idle.append(resource)
            return (nil, false)
        }
        if let waiter { waiter.resume(returning: resource) } else if closed { shutdown(resource) }
    }

    /// Drops a broken (or never made) resource; a waiter may then make a new one.
    private func discard(_ resource: Resource?) {
        if let resource { shutdown(resource) }
        let waiter = state.withLock { state -> CheckedContinuation<Resource?, any Error>? in
            if !state.waiters.isEmpty { return state.waiters.removeFirst() }
            state.created -= 1
            return nil
        }
        waiter?.resume(returning: nil)
    }
}
