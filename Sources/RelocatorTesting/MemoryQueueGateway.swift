import RelocatorCore

/// The memory queue for async callers (the application in tests): a session is the queue itself.
public final class MemoryQueueGateway: QueueGateway {
    public let queue: MemoryQueue

    public init(_ queue: MemoryQueue = MemoryQueue()) {
        self.queue = queue
    }

    public func withSession<T: Sendable>(replicated: Bool, _ body: @escaping @Sendable (any JobQueueSession) throws -> T) async throws -> T {
        try body(queue)
    }

    public func submit(_ request: SubmitRequest) async throws -> SubmitResult {
        guard let result = try queue.submit([request]).first else { throw MemoryQueue.Unavailable() }
        return result
    }

    public func identity() async -> String? { (try? queue.stats(levels: [])) == nil ? nil : "memory" }

    public func problem() async -> String? {
        (try? queue.stats(levels: [])) == nil ? "unreachable (\(MemoryQueue.Unavailable().outage ?? ""))" : nil
    }

    public var address: String { "memory" }
    public var shardCount: Int { queue.shardCount }
    public func close() {}
}

extension MemoryQueue.Unavailable: OutageDescribing, TransientFailure {
    public var outage: String? { "Redis is unreachable; try again later" }
    public var isTransient: Bool { true }
}
