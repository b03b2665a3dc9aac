import Dispatch
import Synchronization

/// Looks at level directories from a process that answers requests (the API, a worker's transfer
/// endpoint): each level's looks
/// run one after another on a queue of their own, so a disk that stops answering (a hard NFS mount
/// whose server is gone, a stalled device) holds up one thread and that level's looks, never the
/// process's other work. A look waits about `patience` at most (the watch ends waits past it every
/// quarter of it): then its level is not answering, and a later look at it is answered so at
/// once, until the look under way there returns.
public final class DiskLooks: Sendable {
    /// What a look found: its body's result, or a disk that did not answer within the patience.
    public enum Outcome<T: Sendable>: Sendable {
        case answered(Result<T, any Error>)
        case notAnswering
    }

    public let patience: Duration
    /// The patience of a process that answers requests, and of a one-shot command's looks.
    public static let requestPatience: Duration = .seconds(2)

    private struct Waiter {
        let since: ContinuousClock.Instant
        let expire: @Sendable () -> Void
    }

    private struct Level {
        let queue: DispatchQueue
        /// When the look under way began (nil: none).
        var busySince: ContinuousClock.Instant?
        /// The looks waiting or under way, by id.
        var waiters: [UInt64: Waiter] = [:]
    }

    private struct State {
        var levels: [String: Level] = [:]
        var nextID: UInt64 = 0
        /// Whether the thread that ends the looks past their patience runs.
        var watching = false
    }

    private let state = Mutex(State())

    public init(patience: Duration = DiskLooks.requestPatience) {
        self.patience = patience
    }

    /// Runs `body` on `level`'s queue of looks and waits for it at most the patience.
    public func look<T: Sendable>(_ level: String, _ body: @escaping @Sendable () throws -> T) async -> Outcome<T> {
        await withCheckedContinuation { (continuation: CheckedContinuation<Outcome<T>, Never>) in
            let reply = Reply(continuation)
            start(level, answer: reply.send, body)
        }
    }

    /// `look`, for a caller allowed to block (a command's run): this thread waits for the answer.
    public func lookWaiting<T: Sendable>(_ level: String, _ body: @escaping @Sendable () throws -> T) -> Outcome<T> {
        let answer = WaitedAnswer<T>()
        start(level, answer: answer.send, body)
        return answer.wait()
    }

    /// Queues `body` on `level`'s queue of looks; `answer` is called once: with its result, or
    /// with `notAnswering` once the patience ended first (at once when a look under way there
    /// already waited past it).
    private func start<T: Sendable>(_ level: String, answer: @escaping @Sendable (Outcome<T>) -> Void,
                                    _ body: @escaping @Sendable () throws -> T) {
        let now = ContinuousClock.now
        let (queued, startWatch) = state.withLock { state -> ((DispatchQueue, UInt64)?, Bool) in
            if state.levels[level] == nil { state.levels[level] = Level(queue: DispatchQueue(label: "relocator.disk-looks")) }
            // A look under way past the patience: the disk does not answer; no other waits behind it.
            if let since = state.levels[level]?.busySince, now - since > patience { return (nil, false) }
            let id = state.nextID
            state.nextID &+= 1
            // (In place: the waiters of a disk that does not answer are not copied at every look.)
            state.levels[level]?.waiters[id] = Waiter(since: now, expire: { answer(.notAnswering) })
            guard let queue = state.levels[level]?.queue else { return (nil, false) }
            let startWatch = !state.watching
            state.watching = true
            return ((queue, id), startWatch)
        }
        guard let (queue, id) = queued else {
            answer(.notAnswering)
            return
        }
        if startWatch { BlockingExecutor.thread(named: "disk-looks") { self.watch() } }
        queue.async {
            // (A look its patience ended while it waited behind another is not made.)
            guard self.begin(level, id) else { return }
            let result = Result { try body() }
            self.end(level, id)
            answer(.answered(result))
        }
    }

    /// Whether a look at `level` is under way (one past the patience included).
    public func isLooking(at level: String) -> Bool {
        state.withLock { $0.levels[level]?.busySince != nil }
    }

    private func begin(_ level: String, _ id: UInt64) -> Bool {
        state.withLock { state in
            guard state.levels[level]?.waiters[id] != nil else { return false }
            state.levels[level]?.busySince = .now
            return true
        }
    }

    private func end(_ level: String, _ id: UInt64) {
        state.withLock { state in
            state.levels[level]?.busySince = nil
            state.levels[level]?.waiters[id] = nil
        }
    }

    /// Every quarter of the patience, answers the looks waiting longer than it "not answering";
    /// ends once no look has been waiting for ten patiences.
    private func watch() {
        let sleep = MonotonicCondition()
        var idleSince = ContinuousClock.now
        while true {
            sleep.withLock { _ = sleep.wait(until: MonotonicCondition.deadline(after: patience / 4)) }
            let now = ContinuousClock.now
            let (expired, done) = state.withLock { state -> ([Waiter], Bool) in
                var expired: [Waiter] = []
                var waiting = false
                for (name, level) in state.levels {
                    for (id, waiter) in level.waiters where now - waiter.since > patience {
                        expired.append(waiter)
                        state.levels[name]?.waiters[id] = nil
                    }
                    if !(state.levels[name]?.waiters.isEmpty ?? true) || level.busySince != nil { waiting = true }
                }
                if waiting { idleSince = now }
                let done = !waiting && now - idleSince > patience * 10
                if done { state.watching = false }
                return (expired, done)
            }
            for waiter in expired { waiter.expire() }
            if done { return }
        }
    }
}

/// A look's answer to a task, sent once: by the look, or by the watch when its patience ended first.
private final class Reply<T: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<DiskLooks.Outcome<T>, Never>?>

    init(_ continuation: CheckedContinuation<DiskLooks.Outcome<T>, Never>) {
        self.continuation = Mutex(continuation)
    }

    func send(_ outcome: DiskLooks.Outcome<T>) {
        continuation.withLock { $0.take() }?.resume(returning: outcome)
    }
}

/// A look's answer to a waiting thread, sent once (the first sent stands).
private final class WaitedAnswer<T: Sendable>: Sendable {
    private let outcome = Mutex<DiskLooks.Outcome<T>?>(nil)
    private let sent = DispatchSemaphore(value: 0)

    func send(_ outcome: DiskLooks.Outcome<T>) {
        let first = self.outcome.withLock { held -> Bool in
            guard held == nil else { return false }
            held = outcome
            return true
        }
        if first { sent.signal() }
    }

    func wait() -> DiskLooks.Outcome<T> {
        sent.wait()
        return outcome.withLock { $0! }
    }
}
