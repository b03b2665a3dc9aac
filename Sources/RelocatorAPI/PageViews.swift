import Hummingbird
import JobQueue
import RelocatorCore
import SQLStore

/// `?limit=&cursor=` of a list route: a whole number from 1 to 1000 (default 50) and the
/// `next_cursor` of the page before; anything else is a 400 that says so.
enum PageParameters {
    static func from(_ request: Request, defaultLimit: Int = PageRequest.defaultLimit) throws -> PageRequest {
        let query = request.uri.queryParameters
        let limitText = query.get("limit")
        var limit: Int64?
        if let limitText {
            guard let value = Int64(limitText) else {
                throw APIError.badRequest("limit must be a whole number from 1 to \(PageRequest.maximumLimit), got '\(limitText.prefix(64))'")
            }
            limit = value
        }
        let cursor = query.get("cursor")
        if let problem = PageRequest.problem(limit: limit, cursor: cursor) { throw APIError.badRequest(problem) }
        return PageRequest(limit: limit.map { Int($0) } ?? defaultLimit, cursor: cursor)
    }
}

/// A page of a list route: `{"<name>": [...], "total": N, "limit": L, "next_cursor": "…" | null}`.
struct PageView<Item: Encodable & Sendable>: Encodable, Sendable {
    var name: String
    var items: [Item]
    var total: Int
    var limit: Int
    var next: String?

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(items, forKey: Key(stringValue: name))
        try c.encode(total, forKey: Key(stringValue: "total"))
        try c.encode(limit, forKey: Key(stringValue: "limit"))
        try c.encode(next, forKey: Key(stringValue: "next_cursor"))
    }
}

/// A retrying or deferred job as `/v1/retrying` and `/v1/deferred` list it: where it goes, why it
/// waits and until when.
public struct ScheduledJobView: Encodable, Sendable {
    public var entry: ScheduledJob

    public init(_ entry: ScheduledJob) {
        self.entry = entry
    }

    enum CodingKeys: String, CodingKey {
        case id, cid, filename, from, to, status, attempts, reason
        case lastError = "last_error", deferReason = "defer_reason", dueAt = "due_at", queuedBy = "queued_by"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        let job = entry.job
        try c.encode(entry.id, forKey: .id)
        try c.encode(job?.cid ?? JobID(entry.id)?.cid, forKey: .cid)
        try c.encode(job?.filename, forKey: .filename)
        try c.encode(job?.dbLevel, forKey: .from)
        try c.encode(job?.target, forKey: .to)
        try c.encode(job?.status.rawValue, forKey: .status)
        try c.encode(job?.attempts, forKey: .attempts)
        try c.encode(job?.reason, forKey: .reason)
        try c.encode(job?.lastError, forKey: .lastError)
        try c.encode(job?.deferReason, forKey: .deferReason)
        try c.encode(Timestamp(milliseconds: entry.due), forKey: .dueAt)
        try c.encode(job?.queuedBy.map(QueuedByView.init), forKey: .queuedBy)
    }
}
