/// A lower bound of the queue's clock at a moment of this process, learnt from the queue's answers.
///
/// An answer that carries the queue's clock (`queueNow`) was made before it arrived here: at a
/// local moment `t` the queue's clock read at least `queueNow + (t − receivedAt)` (both local
/// moments on this process's monotonic clock), however long the answer or anything before it took
/// on the way. That is what makes a cached read safe to compare with the queue's record of a move:
/// a read placed on the queue's clock by this bound is never later than it really was.
///
/// The bound holds while the queue's clock does not step back. The tightest answer seen is kept;
/// one lower by more than `stepTolerance` replaces it (the queue's clock stepped back, or that answer
/// took long on its way: either way the lower bound is the safe one).
public struct QueueClockEstimate: Sendable, Equatable {
    /// The queue's clock minus this process's monotonic clock, as a lower bound (ms).
    public private(set) var offset: Int64?

    public static let stepTolerance: Int64 = 1000
    /// Taken off every bound: two clocks may run at rates that differ a little (a wall clock being
    /// slewed, up to 0.05 %: 15 ms over the 30 s a cached read lives).
    public static let rateMargin: Int64 = 50

    public init() {}

    /// An answer made at `queueNow` (the queue's clock, ms), received at `receivedAt` (this
    /// process's monotonic clock, ms).
    public mutating func observe(queueNow: Int64, receivedAt: Int64) {
        let seen = queueNow.saturatingSubtract(receivedAt)
        guard let known = offset else {
            offset = seen
            return
        }
        if seen > known || seen < known.saturatingSubtract(Self.stepTolerance) { offset = seen }
    }

    /// The queue's clock at the local moment `at` (monotonic, ms) is at least this; nil before any
    /// answer. Never negative.
    public func lowerBound(at local: Int64) -> Int64? {
        offset.map { max(0, local.saturatingAdd($0).saturatingSubtract(Self.rateMargin)) }
    }

    /// Forgets what was learnt (the queue's server is not the one it was).
    public mutating func reset() {
        offset = nil
    }
}
