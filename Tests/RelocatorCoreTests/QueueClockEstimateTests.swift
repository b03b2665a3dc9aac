import RelocatorCore
import Testing

/// The lower bound of the queue's clock that a cached read goes out with: learnt from answers,
/// never later than the queue's clock really was, and safe at the extremes.
@Suite struct QueueClockEstimateTests {
    @Test func nothingIsKnownBeforeAnAnswer() {
        #expect(QueueClockEstimate().lowerBound(at: 123) == nil)
    }

    /// An answer stamped 10,000 on the queue's clock, received at 500 here: 1,000 here later the
    /// queue's clock read at least 11,000 (less the rate margin), however long the answer took.
    @Test func theBoundMovesWithThisProcesssMonotonicClock() {
        var estimate = QueueClockEstimate()
        estimate.observe(queueNow: 10_000, receivedAt: 500)
        #expect(estimate.lowerBound(at: 1_500) == 11_000 - QueueClockEstimate.rateMargin)
        // A moment before the answer arrived: still a lower bound (the answer was made before that).
        #expect(estimate.lowerBound(at: 400) == 9_900 - QueueClockEstimate.rateMargin)
    }

    /// A quicker answer is a tighter bound; a slower one (it took longer on its way) is not taken,
    /// unless it is lower by more than the tolerance: then the queue's clock stepped back, and the
    /// lower bound is the safe one.
    @Test func theTightestAnswerIsKeptUnlessTheQueuesClockSteppedBack() {
        var estimate = QueueClockEstimate()
        estimate.observe(queueNow: 10_000, receivedAt: 500)   // offset 9,500
        estimate.observe(queueNow: 10_200, receivedAt: 600)   // offset 9,600: tighter
        #expect(estimate.offset == 9_600)
        estimate.observe(queueNow: 10_300, receivedAt: 1_000) // offset 9,300: a slow answer
        #expect(estimate.offset == 9_600)
        estimate.observe(queueNow: 5_000, receivedAt: 1_100)  // offset 3,900: the clock stepped back 5.7 s
        #expect(estimate.offset == 3_900)
        estimate.reset()
        #expect(estimate.lowerBound(at: 0) == nil)
    }

    /// Values from outside at their extremes: no trap, never a negative time.
    static let extremes: [(Int64, Int64)] = [(.max, .min), (.min, .max), (0, .max), (.max, 0)]

    @Test(arguments: extremes)
    func extremesNeitherTrapNorGoNegative(queueNow: Int64, receivedAt: Int64) {
        var estimate = QueueClockEstimate()
        estimate.observe(queueNow: queueNow, receivedAt: receivedAt)
        for local in [Int64.min, -1, 0, 1, Int64.max] {
            let bound = estimate.lowerBound(at: local)
            #expect(bound != nil && bound! >= 0)
        }
    }
}
