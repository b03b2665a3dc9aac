import RedisClient
import RelocatorCore

extension JobQueue {
    /// A flat `[field, value, field, value…]` reply (HGETALL, the job hash enqueue.lua answers) as
    /// a table of values indexed by `JobField.ordinal`, read without a dictionary: the names are
    /// matched as bytes and only a job field's value becomes a string. Nil when the reply is not
    /// such an array. The same values as `RedisReply.hash` gives for those names: a field named
    /// twice keeps its last value; a pair whose name or value is not text is skipped.
    static func jobFieldValues(_ reply: RedisReply) -> [String?]? {
        guard case .array(let items) = reply, items.count % 2 == 0 else { return nil }
        let names = JobField.names
        var values = [String?](repeating: nil, count: names.count)
        var index = 0
        while index < items.count {
            defer { index += 2 }
            let slot: Int?
            switch items[index] {
            case .bulk(let name): slot = names.firstIndex(of: name)
            case .status(let name): slot = names.firstIndex { $0.elementsEqual(name.utf8) }
            default: slot = nil
            }
            guard let slot, let value = items[index + 1].string else { continue }
            values[slot] = value
        }
        return values
    }

    /// The job of a flat reply (nil when the reply holds none or does not read as one), as
    /// `Job(hash: reply.hash ?? [:])` would read it.
    static func job(fromFlat reply: RedisReply) -> Job? {
        guard let values = jobFieldValues(reply), case .success(let job) = Job.decode(values: values) else { return nil }
        return job
    }
}
