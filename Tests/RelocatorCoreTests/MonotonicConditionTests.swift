#if canImport(Glibc)
import Glibc
#endif
import Foundation
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

    /// A wait lasts its whole time on the monotonic clock (a deadline of that clock read as one
    /// of the wall clock, long past, would end it at once), and ends at a broadcast.
    @Test func aWaitLastsUntilItsDeadlineAndEndsAtABroadcast() throws {
        let condition = MonotonicCondition()
        let started = ContinuousClock.now
        let deadline = MonotonicCondition.deadline(after: .milliseconds(100))
        var waiting = true
        // (A wake-up without a broadcast is waited again, as every user does.)
        condition.withLock { while waiting { waiting = condition.wait(until: deadline) } }
        #expect(ContinuousClock.now - started >= .milliseconds(100))

        final class Flag: @unchecked Sendable {
            var raised = false
            var seen = false
        }
        let flag = Flag()
        let ended = DispatchSemaphore(value: 0)
        let broadcastAt = ContinuousClock.now
        Thread {
            condition.withLock {
                let far = MonotonicCondition.deadline(after: .seconds(10))
                while !flag.raised {
                    guard condition.wait(until: far) else { break }
                }
                flag.seen = flag.raised
            }
            ended.signal()
        }.start()
        condition.withLock {
            flag.raised = true
            condition.broadcast()
        }
        ended.wait()
        #expect(condition.withLock { flag.seen })
        // Long before its 10 s deadline (a broadcast lost would have it wait them all).
        #expect(ContinuousClock.now - broadcastAt < .seconds(5))
    }
}
