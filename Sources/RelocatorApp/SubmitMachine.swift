import RelocatorCore

/// How one count becomes a submission, as a state machine without I/O: it takes events (the
/// content as cached or read, the queue's answer) and returns what to do next. The application's
/// loop performs the actions (a read of the content, a submission); the rules live here, where
/// they are tested without servers.
///
/// The rules: the level a count falls in is decided from the level the content is on (hysteresis
/// keeps it there until the count falls far enough). A level the content was read at before — a
/// cached read — may be behind a move committed since: the queue answers `stale_level` when it
/// knows the level changed after that read, and names the job's origin when a committed job knows
/// better. Either way the content is read again, the level decided again from where it is, and the
/// count submitted once more, as a fresh read that stands. A count is submitted at most three
/// times; a fresh read is never read again.
public struct SubmitMachine: Sendable {
    public enum Action: Sendable, Equatable {
        /// Read the content from the store (nil when the content does not exist), then call
        /// `contentRead`.
        case readContent
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

    public let cid: Int64
    public let count: Int64
    private let placement: Placement
    private let policy: CountPolicy
    private var content: Content?
    /// When the content was read (the caller's monotonic clock: only its age counts), or `SubmitRequest.freshRead`.
    private var readAt: Int64 = SubmitRequest.freshRead
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

    /// The content as the store has it now: that read stands.
    public mutating func contentRead(_ found: Content?) -> Action {
        guard let found else { return .fail(.unknownContent(cid)) }
        content = found
        readAt = SubmitRequest.freshRead
        readBound = nil
        return decide()
    }

    public mutating func submitted(_ result: SubmitResult) -> Action {
        guard let content, let target else { return .fail(.unsettled(cid)) }
        if readAt != SubmitRequest.freshRead {
            // Where the queue says the file is: its job's origin, or this count's level when the
            // count found the file already there.
            let known = [.inPlace, .dropped].contains(result.outcome) ? target : result.job?.dbLevel
            if result.outcome == .staleLevel || (known != nil && known != content.level) { return .readContent }
        } else if result.outcome == .staleLevel {
            // A fresh read stands: the script never answers this to one; give up rather than loop.
            return .fail(.unsettled(cid))
        }
        return .finish(Submitted(content: content, count: count, target: target, result: result))
    }

    private mutating func decide() -> Action {
        guard let content else { return .readContent }
        guard submissions < 3 else { return .fail(.unsettled(cid)) }
        guard let choice = placement.target(count: count, current: content.level) else { return .fail(.noLevel(count: count)) }
        target = choice.level
        submissions += 1
        let cached = readAt != SubmitRequest.freshRead
        // (0: older than anything, never a negative time that would read as fresh.)
        let request = SubmitRequest(cid: cid, count: count, filename: content.filename, dbLevel: content.level, target: choice.level,
                                    readAt: cached ? max(0, readAt.saturatingSubtract(Self.transitAllowance)) : readAt,
                                    policy: policy, sentAt: cached ? now : nil, readBound: cached ? readBound : nil,
                                    queuedBy: QueuedBy.count(count, from: submitter, decision: choice, placement: placement))
        return .submit(request, raise: choice.raiseMaxCounts.map { Raise(level: choice.level, count: $0) })
    }
}
