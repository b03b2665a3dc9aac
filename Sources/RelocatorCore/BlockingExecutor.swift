import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The one place where blocking work runs.
///
/// Relocator talks to Redis (hiredis), PostgreSQL (libpq), MariaDB (Connector/C) and SQLite through
/// C libraries whose calls block the calling thread, and it reads and writes files. None of that may
/// run on a NIO event loop or on a thread of Swift's cooperative pool, which the HTTP server and every
/// `async` function share. So:
///
/// - **Pooled blocking calls** (a query, a Redis command, an `lstat`, hashing a chunk beside a
///   write) go through `BlockingExecutor.shared`: `run` from async code, `start` + `wait` from code
///   that is itself on a blocking thread. The executor is a concurrent Dispatch queue: Dispatch adds
///   a thread while another is blocked, up to its own limit, and parks idle ones.
/// - **Dedicated threads** exist only for loops that block for long by design — a worker slot waiting
///   in `BRPOPLPUSH` and then moving a file for minutes, the committer's loop, the API's Redis
///   pipeliner waiting for work. They are made by `BlockingExecutor.thread(named:_:)` and nowhere else.
///
/// - **A request's looks at a level directory** in the API (a path check, `why`) run on a serial
///   queue of that level's own (`DiskLooks`), never here: a disk that stops answering then holds
///   one thread, not the executor that Redis and SQL calls share.
///
/// `BlockingPool` (Redis and SQL connections) runs every call, and every close, here.
public final class BlockingExecutor: Sendable {
    /// The process's executor.
    public static let shared = BlockingExecutor(label: "relocator.blocking")

    private let queue: DispatchQueue

    public init(label: String) {
        queue = DispatchQueue(label: label, qos: .userInitiated, attributes: .concurrent)
    }

    private enum RunState<T> {
        case waiting(CheckedContinuation<T, any Error>)
        case started
        case cancelled
    }

    /// Runs `body` on a thread where blocking is allowed and returns its result. A caller cancelled
    /// before `body` started gets `CancellationError` and `body` never runs; once started, `body`
    /// runs to its end (a blocking C call cannot be interrupted) and its result is returned.
    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        let state = Mutex<RunState<T>?>(nil)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                let cancelledEarly = state.withLock { state -> Bool in
                    if case .cancelled = state { return true }
                    state = .waiting(continuation)
                    return false
                }
                if cancelledEarly {
                    continuation.resume(throwing: CancellationError())
                    return
                }
                queue.async {
                    let claimed = state.withLock { state -> CheckedContinuation<T, any Error>? in
                        guard case .waiting(let continuation) = state else { return nil }
                        state = .started
                        return continuation
                    }
                    guard let claimed else { return }
                    claimed.resume(with: Result { try body() })
                }
            }
        } onCancel: {
            let waiting = state.withLock { state -> CheckedContinuation<T, any Error>? in
                switch state {
                case .waiting(let continuation):
                    state = .cancelled
                    return continuation
                case .started:
                    return nil
                case .cancelled, nil:
                    state = .cancelled
                    return nil
                }
            }
            waiting?.resume(throwing: CancellationError())
        }
    }

    /// Work started beside a blocking caller; `wait()` returns its result.
    public final class Pending<T>: @unchecked Sendable {
        private let done = DispatchSemaphore(value: 0)
        private var result: Result<T, any Error>?

        fileprivate init() {}

        fileprivate func finish(_ result: Result<T, any Error>) {
            self.result = result
            done.signal()
        }

        /// Blocks until the work has run; call once.
        public func wait() throws -> T {
            done.wait()
            return try result!.get()
        }
    }

    /// Starts `body` on another thread, for a caller that is itself allowed to block (a worker
    /// slot hashing one chunk while it writes the next). Call `wait()` on the result exactly once.
    public func start<T>(_ body: @escaping () throws -> T) -> Pending<T> {
        let pending = Pending<T>()
        nonisolated(unsafe) let work = body
        queue.async { pending.finish(Result { try work() }) }
        return pending
    }

    /// Makes a dedicated thread for a loop that blocks for long by design. The only place in
    /// Relocator where threads are created.
    public static func thread(named name: String, _ body: @escaping @Sendable () -> Void) {
        let context = Unmanaged.passRetained(ThreadBody(name: name, body: body)).toOpaque()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        var thread = pthread_t()
        let created = pthread_create(&thread, &attributes, { raw in
            let box = Unmanaged<ThreadBody>.fromOpaque(raw!).takeRetainedValue()
            // Linux keeps 15 bytes of a thread's name (shown by top -H and in crash reports).
            _ = setThreadName(pthread_self(), String(decoding: box.name.utf8.prefix(15), as: UTF8.self))
            box.body()
            return nil
        }, context)
        pthread_attr_destroy(&attributes)
        if created != 0 {
            Unmanaged<ThreadBody>.fromOpaque(context).release()
            fatalError("cannot create the thread '\(name)': error \(created)")
        }
    }

    /// Runs `body` for each of `items`, each on a dedicated thread of its own, and waits at most
    /// `patience` (on the monotonic clock) for them all: returns the indices of the items whose
    /// call returned by then. A call that has not — one into a filesystem that hangs, which nothing
    /// can call off — keeps its thread until it does.
    public static func each<Item: Sendable>(_ items: [Item], named name: String, within patience: Duration,
                                            _ body: @escaping @Sendable (Item) -> Void) -> Set<Int> {
        let finished = FinishedCalls()
        for (index, item) in items.enumerated() {
            thread(named: name) {
                body(item)
                finished.condition.withLock {
                    finished.indices.insert(index)
                    finished.condition.broadcast()
                }
            }
        }
        let deadline = MonotonicCondition.deadline(after: patience)
        return finished.condition.withLock {
            while finished.indices.count < items.count {
                if !finished.condition.wait(until: deadline) { break }
            }
            return finished.indices
        }
    }

    /// Runs a blocking loop on a dedicated thread and returns (or throws) what it does.
    public static func onThread<T: Sendable>(named name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            thread(named: name) { continuation.resume(with: Result { try body() }) }
        }
    }
}

/// The calls of `BlockingExecutor.each` that returned.
private final class FinishedCalls: @unchecked Sendable {
    let condition = MonotonicCondition()
    /// Under `condition`'s lock.
    var indices: Set<Int> = []
}

private final class ThreadBody: Sendable {
    let name: String
    let body: @Sendable () -> Void
    init(name: String, body: @escaping @Sendable () -> Void) {
        self.name = name
        self.body = body
    }
}

/// glibc's `pthread_setname_np` (a GNU extension the Glibc module does not export).
@_silgen_name("pthread_setname_np")
private func setThreadName(_ thread: pthread_t, _ name: UnsafePointer<CChar>) -> Int32
