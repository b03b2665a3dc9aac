/// The queue for async callers (the API, the command line): sessions of a pool, each call on a
/// blocking thread, and submissions of concurrent callers sharing round trips. JobQueue implements
/// it over Redis; RelocatorTesting's memory queue is one too.
public protocol QueueGateway: Sendable {
    /// Runs `body` with a session on a blocking thread. With `replicated`, every write `body` made
    /// has reached the replicas the deployment asks for when this returns (else it throws).
    func withSession<T: Sendable>(replicated: Bool, _ body: @escaping @Sendable (any JobQueueSession) throws -> T) async throws -> T
    /// One submission; concurrent callers' submissions share round trips.
    func submit(_ request: SubmitRequest) async throws -> SubmitResult
    /// What the queue's server is now (a run id, a cluster's epoch), nil when it does not answer: a
    /// change means it may have lost what it knew (a restart, a failover).
    func identity() async -> String?
    /// Nil when the queue answers and accepts writes; otherwise what is wrong, in words.
    func problem() async -> String?
    /// Where the queue is, as messages name it.
    var address: String { get }
    var shardCount: Int { get }
    func close()
}

extension QueueGateway {
    public func withSession<T: Sendable>(_ body: @escaping @Sendable (any JobQueueSession) throws -> T) async throws -> T {
        try await withSession(replicated: false, body)
    }
}

/// A failure that means a server is out of reach or refuses for now: a client sees a 503 (or a
/// one-line message) with `outage`, never the server's own words.
public protocol OutageDescribing: Error {
    /// What a client is told; nil when the error is not an outage.
    var outage: String? { get }
}
