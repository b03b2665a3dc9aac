/// The common calls of the seam, spelled as what they do.
extension JobQueueing {
    /// Everything a process holds goes back (`ids`: only those); `fence`: its deliveries may
    /// still act. Returns how many jobs went back.
    @discardableResult
    public func release(worker: String, ids: [HeldJob]? = nil, fence: Bool) throws -> Int {
        guard case .count(let count) = try control(.release(worker: worker, ids: ids, fence: fence)) else { return 0 }
        return count
    }

    /// One after the other (a queue without a cheaper way), each on its own.
    public func complete(_ endings: [(delivery: Delivery, outcome: Outcome)]) -> [Result<Completion, any Error>] {
        endings.map { ending in Result { try complete(ending.delivery, ending.outcome) } }
    }

    /// One after the other (a queue without a cheaper way).
    public func controls(_ actions: [ControlAction]) throws -> [ControlResult] {
        try actions.map { try control($0) }
    }

    /// A submission of one count.
    public func submit(_ request: SubmitRequest) throws -> SubmitResult {
        try submit([request])[0]
    }
}
