import RelocatorCore

/// The queue as a pull from another host calls it, counting what the pull does: the bytes it
/// pulled (each chunk once it is fsynced and recorded verified; a prefix an earlier delivery
/// verified and this one hashed again is not counted) and how it ended (`Completion`). Everything
/// else goes to the queue as it is.
final class PullMetering: QueueDecorator {
    let inner: any JobQueueSession
    let from: String
    let to: String
    /// The bytes verified so far, as the job said at the claim and then as recorded.
    private var verified: Int64

    init(_ inner: any JobQueueSession, job: Job) {
        self.inner = inner
        from = job.dbLevel
        to = job.target
        verified = max(0, job.verified ?? 0)
    }

    func record(_ delivery: Delivery, _ progress: MoveProgress) throws -> Bool {
        let recorded = try inner.record(delivery, progress)
        if recorded, case .verified(let done, _) = progress, done >= 0 {
            // Fewer than before: the kept prefix differed from the source's, and the pull started from 0.
            ServiceMetrics.pulled(from: from, to: to, bytes: done >= verified ? done - verified : done)
            verified = done
        }
        return recorded
    }

    func complete(_ delivery: Delivery, _ outcome: Outcome) throws -> Completion {
        let completion = try inner.complete(delivery, outcome)
        ServiceMetrics.pull(from: from, to: to, outcome: completion.rawValue)
        return completion
    }
}
