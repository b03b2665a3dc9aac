import Synchronization

/// At most `size` resources whose calls block (a hiredis or libpq connection), shared by async
/// callers. Every call on a resource — making it, using it, closing it — runs on the
/// `BlockingExecutor`, never on the caller's thread. A caller that finds no free resource waits
/// suspended, and can be cancelled while it waits.
public final class BlockingPool<Resource: AnyObject & Sendable>: Sendable {
    public let size: Int
    private let make: @Sendable () throws -> Resource
    private let shutdown: @Sendable (Resource) -> Void
    private let executor: BlockingExecutor

    private struct Waiter {
        let id: Int
        let continuation: CheckedContinuation<Resource?, any Error>
    }

    private struct State: ~Copyable {
        var idle: [Resource] = []
        var created = 0
        var waiters: [Waiter] = []
        var nextWaiter = 0
        var closed = false
    }

    private let state = Mutex(State())
    private let closedError: @Sendable () -> any Error

    /// - Parameters:
    ///   - make: opens a resource.
    ///   - close: closes a resource when the pool closes or a resource broke.
    ///   - closedError: what callers get once the pool is closed.
    public init(size: Int, executor: BlockingExecutor = .shared, make: @escaping @Sendable () throws -> Resource,
                close: @escaping @Sendable (Resource) -> Void, closedError: @escaping @Sendable () -> any Error) {
        precondition(size > 0, "a pool needs at least one resource")
        self.size = size
        self.make = make
        self.shutdown = close
        self.closedError = closedError
        self.executor = executor
    }

    /// Runs `body` with a resource of its own, on a thread where blocking is allowed. When `body`
    /// throws an error for which `isBroken` is true, the resource is closed instead of reused.
    public func withResource<T: Sendable>(isBroken: @escaping @Sendable (any Error) -> Bool = { _ in false },
                                          _ body: @escaping @Sendable (Resource) throws -> T) async throws -> T {
        let reserved = try await acquire()
        let make = self.make
        let shutdown = self.shutdown
        let outcome: (Result<T, any Error>, Resource?)
        do {
            outcome = try await executor.run { () -> (Result<T, any Error>, Resource?) in
                let resource: Resource
                do {
                    resource = try reserved ?? make()
                } catch {
                    return (.failure(error), nil)
                }
                let result = Result { try body(resource) }
                if case .failure(let error) = result, isBroken(error) {
                    shutdown(resource)
                    return (result, nil)
                }
                return (result, resource)
            }
        } catch {
            // Cancelled before the call started: the reservation goes back untouched.
            if let reserved { release(reserved) } else { discard() }
            throw error
        }
        if let resource = outcome.1 { release(resource) } else { discard() }
        return try outcome.0.get()
    }

    /// Closes idle resources (on the executor) and fails waiting and later callers.
    public func close() {
        let (idle, waiters) = state.withLock { state -> ([Resource], [Waiter]) in
            state.closed = true
            defer { state.idle = []; state.waiters = [] }
            return (state.idle, state.waiters)
        }
        for waiter in waiters { waiter.continuation.resume(throwing: closedError()) }
        if idle.isEmpty { return }
        let shutdown = self.shutdown
        _ = executor.start { for resource in idle { shutdown(resource) } }
    }

    private enum Acquired {
        case resource(Resource)
        case make
        case closed
        case wait
    }

    private func tryAcquire(_ state: inout State) -> Acquired {
        if state.closed { return .closed }
        if let resource = state.idle.popLast() { return .resource(resource) }
        if state.created < size {
            state.created += 1
            return .make
        }
        return .wait
    }

    /// A free resource, or nil when the caller may make a new one.
    private func acquire() async throws -> Resource? {
        switch state.withLock({ tryAcquire(&$0) }) {
        case .resource(let resource): return resource
        case .make: return nil
        case .closed: throw closedError()
        case .wait: break
        }
        let id = state.withLock { state -> Int in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let now = state.withLock { state -> Acquired in
                    if Task.isCancelled { return .closed }
                    let outcome = tryAcquire(&state)
                    if case .wait = outcome { state.waiters.append(Waiter(id: id, continuation: continuation)) }
                    return outcome
                }
                switch now {
                case .resource(let resource): continuation.resume(returning: resource)
                case .make: continuation.resume(returning: nil)
                case .closed: continuation.resume(throwing: Task.isCancelled ? CancellationError() : closedError())
                case .wait: break
                }
            }
        } onCancel: {
            let waiter = state.withLock { state -> Waiter? in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: index)
            }
            waiter?.continuation.resume(throwing: CancellationError())
        }
    }

    private func release(_ resource: Resource) {
        let (waiter, closed) = state.withLock { state -> (Waiter?, Bool) in
            if !state.waiters.isEmpty { return (state.waiters.removeFirst(), false) }
            if state.closed { return (nil, true) }
            state.idle.append(resource)
            return (nil, false)
        }
        if let waiter {
            waiter.continuation.resume(returning: resource)
        } else if closed {
            let shutdown = self.shutdown
            _ = executor.start { shutdown(resource) }
        }
    }

    /// A resource broke (and was closed) or was never made: a waiter may make a new one.
    private func discard() {
        let waiter = state.withLock { state -> Waiter? in
            if !state.waiters.isEmpty { return state.waiters.removeFirst() }
            state.created -= 1
            return nil
        }
        waiter?.continuation.resume(returning: nil)
    }
}
