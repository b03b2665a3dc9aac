import RelocatorCore
import Testing

/// What a worker does with a move that ended without moving (`RetryDecision`): a decision over the
/// failure, the job's history and the retry policy, taken without a queue, a disk or a clock.
@Suite struct RetryDecisionTests {
    let policy = RetryPolicy(base: .seconds(1), cap: .seconds(300), maxAttempts: 5)

    func decide(_ reason: FailureReason, attempts: Int = 0, previous: FailureReason? = nil, random: Double = 1) -> RetryDecision {
        RetryDecision.decide(reason, attempts: attempts, previous: previous, policy: policy, lockedRetry: .seconds(7),
                             unavailableRetry: .seconds(30), random: random)
    }

    /// Every reason has one answer: dropped, waiting, retried or dead at once; none is both a
    /// failure and a wait.
    @Test(arguments: FailureReason.allCases)
    func everyReasonIsDroppedWaitedRetriedOrDeadAtOnce(reason: FailureReason) {
        switch decide(reason) {
        case .drop:
            #expect([.leaseLost, .cancelled].contains(reason), "\(reason)")
        case .wait(let delay, let lockHeld):
            #expect([.contentLocked, .levelUnavailable].contains(reason), "\(reason)")
            #expect(delay == (reason == .contentLocked ? .seconds(7) : .seconds(30)) && lockHeld == (reason == .levelUnavailable))
        case .fail(let permanent, let delay):
            // Written out, not read from the table under test: these never succeed by trying again.
            let permanentReasons: [FailureReason] = [.invalidFilename, .unsafePath, .unknownLevel, .sourceMissing, .notRegularFile,
                                                     .destinationConflict, .undecodableJob, .doesNotFit]
            #expect(permanent == permanentReasons.contains(reason), "\(reason)")
            #expect(delay == .seconds(1), "the first retry waits the base")
        }
    }

    /// A job that no longer belongs to the delivery, or a worker that stops, is not a failure: the
    /// attempt counts nothing, whatever came before.
    @Test func aLostLeaseAndAShutdownAreNotFailures() {
        #expect(decide(.leaseLost, attempts: 4, previous: .ioError) == .drop)
        #expect(decide(.cancelled, attempts: 4, previous: .checksumMismatch) == .drop)
    }

    /// One checksum mismatch is chance and is retried; a second in a row is the device, and the
    /// job is dead at once. Another failure in between starts over.
    @Test func aChecksumMismatchTwiceInARowIsPermanent() {
        #expect(decide(.checksumMismatch) == .fail(permanent: false, delay: .seconds(1)))
        #expect(decide(.checksumMismatch, attempts: 1, previous: .checksumMismatch) == .fail(permanent: true, delay: .seconds(2)))
        #expect(decide(.checksumMismatch, attempts: 2, previous: .ioError) == .fail(permanent: false, delay: .seconds(4)))
        #expect(decide(.ioError, attempts: 2, previous: .checksumMismatch) == .fail(permanent: false, delay: .seconds(4)))
    }

    /// The delay doubles with each failed attempt up to the cap, drawn between half and the whole
    /// of it; a wait for a lock or a level ignores the attempts.
    @Test func theDelayFollowsThePolicyAndAWaitIgnoresTheAttempts() {
        #expect((0..<10).map { decide(.noSpace, attempts: $0) } == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300].map {
            RetryDecision.fail(permanent: false, delay: .seconds($0))
        })
        #expect(decide(.noSpace, attempts: 3, random: 0) == .fail(permanent: false, delay: .seconds(4)))
        #expect(decide(.noSpace, attempts: 3, random: 0.5) == .fail(permanent: false, delay: .seconds(6)))
        #expect(decide(.noSpace, attempts: .max) == .fail(permanent: false, delay: .seconds(300)), "no overflow at the largest count")
        #expect(decide(.contentLocked, attempts: 9) == .wait(.seconds(7), lockHeld: false))
        #expect(decide(.levelUnavailable, attempts: 9) == .wait(.seconds(30), lockHeld: true))
    }
}

/// When a job waiting in the retry or the deferred set is due (`ScheduleHorizons.isDue`), also
/// after Redis' clock stepped back.
@Suite struct ScheduleHorizonsTests {
    @Test func aJobIsDueAtItsTimeOrWhenScheduledBeyondItsHorizon() {
        #expect(ScheduleHorizons.isDue(1000, now: 1000, horizon: nil))
        #expect(!ScheduleHorizons.isDue(1001, now: 1000, horizon: nil), "without a horizon it waits for its time")
        #expect(!ScheduleHorizons.isDue(1000 + 300_000, now: 1000, horizon: .seconds(300)), "within the horizon it waits")
        #expect(ScheduleHorizons.isDue(1000 + 300_001, now: 1000, horizon: .seconds(300)), "beyond it, the clock stepped back")
        #expect(!ScheduleHorizons.isDue(.max, now: .max - 1, horizon: .seconds(300)), "no overflow near the largest time")
        #expect(ScheduleHorizons.isDue(.max, now: .min, horizon: .seconds(300)))
    }
}
