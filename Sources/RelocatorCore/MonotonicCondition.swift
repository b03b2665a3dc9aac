#if canImport(Glibc)
import Glibc
#endif

/// A lock and a condition whose timed waits run on the monotonic clock. `NSCondition.wait(until:)`
/// and `DispatchSemaphore.wait(timeout:)` wait for an absolute time of the wall clock: when the
/// host's clock steps back by an hour during the wait (NTP, a VM resumed), the wait lasts an hour
/// more — a heartbeat missed, a worker declared dead, a stop that hangs. Here the deadline is a
/// reading of `CLOCK_MONOTONIC`, which no clock step moves.
public final class MonotonicCondition: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    public init() {
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    public func lock() { pthread_mutex_lock(mutex) }

    public func unlock() { pthread_mutex_unlock(mutex) }

    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }

    /// Wakes every waiter (call it holding the lock).
    public func broadcast() { pthread_cond_broadcast(condition) }

    /// A deadline `duration` from now on the monotonic clock; a duration too long for it is the
    /// farthest deadline there is.
    public static func deadline(after duration: Duration) -> timespec {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let (seconds, attoseconds) = max(duration, .zero).components
        var nanoseconds = Int(now.tv_nsec) + Int(attoseconds / 1_000_000_000)
        var carry = 0
        if nanoseconds >= 1_000_000_000 {
            nanoseconds -= 1_000_000_000
            carry = 1
        }
        let (sum, overflow) = Int(now.tv_sec).addingReportingOverflow(Int(seconds))
        let (total, overflowAgain) = sum.addingReportingOverflow(carry)
        if overflow || overflowAgain { return timespec(tv_sec: .max, tv_nsec: 999_999_999) }
        return timespec(tv_sec: total, tv_nsec: nanoseconds)
    }

    /// Waits (holding the lock) for a broadcast or for `deadline` (`deadline(after:)`); false once
    /// the deadline has passed. A wake-up may come without a broadcast: check what is waited for
    /// again.
    public func wait(until deadline: timespec) -> Bool {
        var deadline = deadline
        return pthread_cond_timedwait(condition, mutex, &deadline) != ETIMEDOUT
    }

    /// Waits (holding the lock) for a broadcast, with no deadline.
    public func wait() { pthread_cond_wait(condition, mutex) }
}
