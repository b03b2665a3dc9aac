import RelocatorCore

/// A move the placement chose for a content (a watermark demotion, a displacement, a decay
/// demotion, a promotion), as the rebalancer hands it to the application to enqueue.
public struct PlacementMove: Sendable, Equatable {
    public var cid: Int64
    /// The count that chose the target (decayed for a hit counter), when the plan had one.
    public var count: Double?
    public var from: String
    public var to: String
    /// The plan's kind of move (`watermark`, `displacement`, `decay`, `promotion`).
    public var kind: String
    /// The rule that chose it, in words, kept with the job.
    public var reason: String

    public init(cid: Int64, count: Double?, from: String, to: String, kind: String, reason: String) {
        self.cid = cid
        self.count = count
        self.from = from
        self.to = to
        self.kind = kind
        self.reason = reason
    }
}

extension App {
    /// Why a placement move was not enqueued.
    public enum PlacementRefusal: Error, Equatable, Sendable {
        /// The content is no longer on the level the plan read (a move committed meanwhile).
        case leftLevel(now: String)
        /// Its filename cannot be moved safely.
        case unsafeFilename(String)
    }

    /// The request a placement move becomes, by the submit rules every enqueue follows: the
    /// content's current row (it must still be on the level the plan read, with a safe filename),
    /// read at `readAt` (the caller's monotonic clock, ms: the request goes with the read's age, as
    /// a count's does, and is sent at `readAt` unless the caller says later), a count within
    /// bounds, the published count policy, and who queued it and why. Pure.
    public static func placementRequest(_ move: PlacementMove, content: Content, readAt: Int64, policy: CountPolicy)
        -> Result<SubmitRequest, PlacementRefusal> {
        guard content.cid == move.cid, content.level == move.from else { return .failure(.leftLevel(now: content.level)) }
        do {
            _ = try Filename(content.filename)
        } catch let invalid as Filename.Invalid {
            return .failure(.unsafeFilename(invalid.reason))
        } catch {
            return .failure(.unsafeFilename("\(error)"))
        }
        return .success(SubmitRequest(cid: move.cid, count: CountBound.clamped(move.count ?? 0), filename: content.filename,
                                      dbLevel: content.level, target: move.to, readAt: SubmitMachine.sentReadAt(readAt), policy: policy, sentAt: readAt,
                                      queuedBy: QueuedBy(who: Submitter.rebalancer(kind: move.kind).who, rule: move.reason), fromPlan: true))
    }

    /// The rebalancer's enqueue (it runs on a thread of its own, over a session of its own): the
    /// request `placementRequest` makes, submitted through `session`, so that a placement move
    /// coalesces with counts as any submission does. `content` was read at `readAt` on `monotonic`
    /// (ms). Nil when the move was refused; `stale_level` when the content changed after the read
    /// (the next round plans it again).
    public static func submitPlacement(_ move: PlacementMove, content: Content, readAt: Int64, policy: CountPolicy,
                                       monotonic: () -> Int64 = MonotonicClock.milliseconds,
                                       on session: any JobQueueSession) throws -> SubmitResult? {
        guard case .success(var request) = placementRequest(move, content: content, readAt: readAt, policy: policy) else { return nil }
        request.sentAt = monotonic()
        return try session.submit(request)
    }
}
