import Synchronization

/// Answers kept for a short while by name, so that many readers of one page within that while
/// cost one computation (the dashboard's placement page reads the plan, which walks the database
/// and the queue). A failure is not kept: the next reader tries again.
public final class RecentAnswers: Sendable {
    private let answers = Mutex<[String: (value: any Sendable, at: ContinuousClock.Instant)]>([:])
    private let now: @Sendable () -> ContinuousClock.Instant

    public init(now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }) {
        self.now = now
    }

    /// The answer named `name` computed less than `maxAge` ago, else `compute`'s (then kept).
    public func value<T: Sendable>(_ name: String, maxAge: Duration, _ compute: () async throws -> T) async throws -> T {
        let time = now()
        if let kept = answers.withLock({ $0[name] }), time - kept.at < maxAge, let value = kept.value as? T { return value }
        let value = try await compute()
        answers.withLock { $0[name] = (value, time) }
        return value
    }

    /// Forgets every answer (after a change that they may no longer reflect).
    public func clear() { answers.withLock { $0.removeAll() } }
}
