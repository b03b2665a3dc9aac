#if canImport(Glibc)
import Glibc
#endif
import RelocatorCore
import Testing

/// The waits every service loop sleeps on (the clock they run on is tested whole in
/// `ClockStepTests`, with a process's wall clock shifted).
@Suite struct MonotonicConditionTests {
    func monotonicNow() -> timespec {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return now
    }

    @Test func aDeadlineIsOnTheMonotonicClockAndTheLongestSaturates() {
        let now = monotonicNow()
        let soon = MonotonicCondition.deadline(after: .milliseconds(1500))
        #expect(soon.tv_sec - now.tv_sec >= 1 && soon.tv_sec - now.tv_sec <= 2 && soon.tv_nsec < 1_000_000_000)
        let past = MonotonicCondition.deadline(after: .seconds(-5))
        #expect(past.tv_sec <= monotonicNow().tv_sec, "a negative duration is a deadline already passed")
        for longest in [Duration.seconds(Int64.max), .seconds(Int64.max) + .nanoseconds(999_999_999)] {
            let deadline = MonotonicCondition.deadline(after: longest)
            #expect(deadline.tv_sec == Int.max && deadline.tv_nsec == 999_999_999)
        }
    }

    @Test func aWaitEndsAtItsDeadlineOrAtABroadcast() async throws {
        let condition = MonotonicCondition()
        let passed = condition.withLock { condition.wait(until: MonotonicCondition.deadline(after: .milliseconds(20))) }
        #expect(!passed, "nothing broadcast: the deadline passed")
        // A waiter with a deadline far away is woken by a broadcast.
        final class Flag: @unchecked Sendable { var raised = false }
        let flag = Flag()
        let waiter = Task.detached {
            condition.withLock {
                let deadline = MonotonicCondition.deadline(after: .seconds(3600))
                while !flag.raised { _ = condition.wait(until: deadline) }
                return flag.raised
            }
        }
        try await Task.sleep(for: .milliseconds(10))
        condition.withLock {
            flag.raised = true
            condition.broadcast()
        }
        #expect(await waiter.value)
    }
}
