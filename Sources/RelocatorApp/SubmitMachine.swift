import RelocatorCore

/// How one count becomes a submission, as a state machine without I/O: it takes events (the
/// content as cached or read, the queue's answer) and returns what to do next. The application's
/// loop performs the actions (a read of the content, a submission); the rules live here, where
/// they are tested without servers.
///
/// The rules: the level a count falls in is decided from the level the content is on (hysteresis
/// keeps it there until the count falls far enough). Every read of the content goes to the queue
/// with its age: a level read before — cached, or read from the store a moment ago by a process
/// that may have paused since — may be behind a change made since. The queue answers `stale_level`
/// when it knows the level or the name changed after that read, and names the job's origin when a
/// committed job knows better. A cached read is then read again, the level decided again from where
/// it is, and the count submitted once more. A read from the store that the queue calls stale is
/// read again after `staleReadPause` (the change was made so close before it that the read's age
/// cannot place it after the change); one the queue contradicts with a job stands (the job may be
/// a reversed one, whose origin the database does not name). A count is submitted at most three
/// times.
public struct SubmitMachine: Sendable {
    public enum Action: Sendable, Equatable {
        /// Read the content from the store (nil when the content does not exist), then call
        /// `contentRead`.
        case readContent
        /// Wait `staleReadPause` ms, then read the content from the store as for `readContent`: a
        /// read made sooner would be judged stale again.
        case pauseThenReadContent
        /// Submit `request` (after raising `raise`'s level's `max_counts` to its count, when set),
        /// then call `submitted`.
        case submit(SubmitRequest, raise: Raise?)
        /// The count is placed.
        case finish(Submitted)
        case fail(Failure)
    }

    public struct Raise: Sendable, Equatable {
        public var level: String
        public var count: Int64

        public init(level: String, count: Int64) {
            self.level = level
            self.count = count
        }
    }

    public enum Failure: Sendable, Equatable {
        case unknownContent(Int64)
        case noLevel(count: Int64)
        /// The queue kept answering that the level changed: a bug or a storm of changes.
        case unsettled(Int64)
    }

    /// What a placed count did.
    public struct Submitted: Sendable, Equatable {
        public var content: Content
        public var count: Int64
        /// The level the count sends the content to.
        public var target: String
        public var result: SubmitResult

        public init(content: Content, count: Int64, target: String, result: SubmitResult) {
            self.content = content
            self.count = count
            self.target = target
            self.result = result
        }
    }

    /// How much older than its age a cached read is said to be (ms). The queue places the read on
    /// its own clock as `now − (sentAt − readAt)`, where `now` is when the call arrives: the time the
    /// call spent on its way would otherwise count as time after the read, and a move committed in
    /// that window would not be seen. A change this close before the read costs one read again.
    public static let transitAllowance: Int64 = 1000

    /// How long a read from the store that the queue called stale waits before it is read again
    /// (ms): the change was recorded before the queue's answer, and a read this long after that
    /// answer is placed after it both by its age less `transitAllowance` and by the lower bound
    /// of the queue's clock (`QueueClockEstimate`, less its `rateMargin`).
    public static let staleReadPause: Int64 = transitAllowance + QueueClockEstimate.rateMargin

    /// A read at `readAt` (the caller's clock) as it is sent: older by `transitAllowance`, and
    /// never negative (0: older than anything; a negative time would read as a fresh read that
    /// stands whatever the queue holds).
    public static func sentReadAt(_ readAt: Int64) -> Int64 {
        max(0, readAt.saturatingSubtract(transitAllowance))
    }

    /// How many times a count is submitted at most.
    static let submissionLimit = 3

    public let cid: Int64
    public let count: Int64
    private let placement: Placement
    private let policy: CountPolicy
    private var content: Content?
    /// When the content was read (the caller's monotonic clock: only its age counts), or `SubmitRequest.freshRead`.
    private var readAt: Int64 = SubmitRequest.freshRead
    /// Whether the content was read from the store in this submission (not taken from a cache).
    private var readHere = false
    /// With a cached read: the queue's clock when it was read was at least this (nil: not known).
    private var readBound: Int64?
    private var target: String?
    private var submissions = 0
    private let now: Int64?
    private let submitter: Submitter

    /// `now`: the caller's clock when it submits, the clock `readAt` is on. `submitter`: who sent
    /// the count (kept in the job with the rule that chose its level).
    public init(cid: Int64, count: Int64, placement: Placement, policy: CountPolicy, now: Int64? = nil,
                submitter: Submitter = .other("a caller of the application")) {
        self.now = now
        self.submitter = submitter
        self.cid = cid
        self.count = count
        self.placement = placement
        self.policy = policy
    }

    /// The start: with the content as a cache holds it (`readAt`: when it was read; `readBound`:
    /// the queue's clock then was at least this, when known), or nil.
    public mutating func start(cached: Content?, readAt: Int64, readBound: Int64? = nil) -> Action {
        guard let cached else { return .readContent }
        content = cached
        self.readAt = readAt
        self.readBound = readBound
        return decide()
    }

    /// The content as the store had it when it was read at `readAt` (the caller's clock), with
    /// `readBound` (the queue's clock then was at least this, when known). `readAt` of
    /// `SubmitRequest.freshRead`: a read that stands whatever the queue holds, for a caller that
    /// cannot pause between the read and the submission (tests).
    public mutating func contentRead(_ found: Content?, readAt: Int64 = SubmitRequest.freshRead, readBound: Int64? = nil) -> Action {
        guard let found else { return .fail(.unknownContent(cid)) }
        content = found
        self.readAt = readAt
        self.readBound = readAt == SubmitRequest.freshRead ? nil : readBound
        readHere = true
        return decide()
    }

    public mutating func submitted(_ result: SubmitResult) -> Action {
        guard let content, let target else { return .fail(.unsettled(cid)) }
        if result.outcome == .staleLevel {
            // A read that stands is never called stale: give up rather than loop.
            // (Nor read again for a submission that could not be made.)
            if readAt == SubmitRequest.freshRead || submissions >= Self.submissionLimit { return .fail(.unsettled(cid)) }
            return readHere ? .pauseThenReadContent : .readContent
        }
        if readAt != SubmitRequest.freshRead && !readHere {
            // Where the queue says the file is: its job's origin, or this count's level when the
            // count found the file already there.
            let known = [.inPlace, .dropped].contains(result.outcome) ? target : result.job?.dbLevel
            if known != nil && known != content.level { return .readContent }
        }
        return .finish(Submitted(content: content, count: count, target: target, result: result))
    }

    private mutating func decide() -> Action {
        guard let content else { return .readContent }
        guard submissions < Self.submissionLimit else { return .fail(.unsettled(cid)) }
        guard let choice = placement.target(count: count, current: content.level) else { return .fail(.noLevel(count: count)) }
        target = choice.level
        submissions += 1
        let cached = readAt != SubmitRequest.freshRead
        // (0: older than anything, never a negative time that would read as fresh.)
        let request = SubmitRequest(cid: cid, count: count, filename: content.filename, dbLevel: content.level, target: choice.level,
                                    readAt: cached ? Self.sentReadAt(readAt) : readAt,
                                    policy: policy, sentAt: cached ? now : nil, readBound: cached ? readBound : nil,
                                    queuedBy: QueuedBy.count(count, from: submitter, decision: choice, placement: placement))
        return .submit(request, raise: choice.raiseMaxCounts.map { Raise(level: choice.level, count: $0) })
    }
}
