import JobQueue
import RedisClient
import RelocatorCore
import Foundation

/// A flag that threads of a service poll and sleep on: `wait(for:)` returns early when the flag
/// is raised, so no loop sleeps through a shutdown. Sleeps are measured on the monotonic clock
/// (`MonotonicCondition`): a step of the host's clock neither lengthens nor shortens them.
public final class StopSignal: @unchecked Sendable {
    private let condition = MonotonicCondition()
    private var raised = false

    public init() {}

    public var isRaised: Bool {
        condition.lock()
        defer { condition.unlock() }
        return raised
    }

    /// Raises the flag and wakes every waiter. Returns false when it was already raised.
    @discardableResult
    public func raise() -> Bool {
        condition.lock()
        defer { condition.unlock() }
        if raised { return false }
        raised = true
        condition.broadcast()
        return true
    }

    /// Sleeps up to `duration`; true when the flag is (or gets) raised.
    @discardableResult
    public func wait(for duration: Duration) -> Bool {
        let deadline = MonotonicCondition.deadline(after: duration)
        condition.lock()
        defer { condition.unlock() }
        while !raised {
            if !condition.wait(until: deadline) { break }
        }
        return raised
    }
}

/// The reconnect backoff of a loop that talks to a server (`RetryPolicy.reconnect`): one step
/// longer per failure in a row, back to the first after a success. Every loop of the services
/// waits through it, so that one policy decides how they all wait.
struct ReconnectBackoff {
    /// Failures in a row.
    private(set) var failures = 0

    mutating func succeeded() { failures = 0 }

    /// One more failure: waits its delay on `stop`; true when `stop` was raised meanwhile.
    @discardableResult
    mutating func failed(waitingOn stop: StopSignal) -> Bool {
        failures += 1
        return stop.wait(for: RetryPolicy.reconnect.delay(afterFailures: failures))
    }
}

/// Runs `body` until the queue answers, one outage logged through `health`, waiting out each
/// failure on `stopping` (`ReconnectBackoff`); nil when `stopping` is raised first. What waiting
/// cannot mend stops the caller at once: a refused password, a shard count or a half-life other
/// than the queue's.
func untilAvailable<T>(stopping: StopSignal, health: OutageLog, _ body: () throws -> T) throws -> T? {
    var backoff = ReconnectBackoff()
    while !stopping.isRaised {
        do {
            let value = try body()
            health.succeeded()
            return value
        } catch {
            if waitingCannotMend(error) { throw error }
            health.failed(error)
            backoff.failed(waitingOn: stopping)
        }
    }
    return nil
}

/// What no wait for the queue mends, and stops a service at once: a refused password, a shard
/// count or a half-life other than the one the queue's keys were made with.
func waitingCannotMend(_ error: any Error) -> Bool {
    (error as? RedisError)?.code == .authentication || error is JobQueue.ShardCountChange || error is HalfLifeChange
}
