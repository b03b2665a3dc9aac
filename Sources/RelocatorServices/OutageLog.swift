import Logging
import RelocatorCore
import Synchronization

/// One log line when a dependency (Redis, the database) stops answering and one when it answers
/// again, with how long it was gone — however many threads keep failing meanwhile.
public final class OutageLog: Sendable {
    private let what: String
    private let logger: Logger
    private let since = Mutex<ContinuousClock.Instant?>(nil)

    public init(_ what: String, logger: Logger) {
        self.what = what
        self.logger = logger
    }

    /// A call failed: the first failure of an outage is logged.
    public func failed(_ error: any Error) {
        let first = since.withLock { since -> Bool in
            if since != nil { return false }
            since = .now
            return true
        }
        if first { logger.warning("\(what) is unreachable; retrying until it answers: \(error)") }
    }

    /// A call succeeded: the end of an outage is logged.
    public func succeeded() {
        let started = since.withLock { since -> ContinuousClock.Instant? in
            defer { since = nil }
            return since
        }
        if let started {
            let seconds = Double((ContinuousClock.now - started).milliseconds) / 1000
            logger.notice("\(what) answers again (unreachable for \(seconds.formatted(decimals: 1)) s)")
        }
    }

    public var isDown: Bool { since.withLock { $0 != nil } }
}
