import Foundation
import JobQueue
import RelocatorCore

// The shapes the command line printed with `--json` before it printed the views of Views.swift
// itself: the same JSON as the API, as Foundation objects. The command line can drop these once
// it encodes `QueuesView` and `DeadJobView` with `RelocatorJSON`.

extension QueueStats {
    /// `status --json`: `QueuesView` as Foundation objects.
    public var json: [String: Any] {
        Self.object(QueuesView(self)) as? [String: Any] ?? [:]
    }

    static func object(_ value: some Encodable) -> Any {
        do {
            return try JSONSerialization.jsonObject(with: RelocatorJSON.data(value))
        } catch {
            // Encoding these views cannot fail (strings, numbers, arrays, objects only).
            preconditionFailure("cannot encode \(type(of: value)): \(error)")
        }
    }
}

extension Job {
    /// `dlq list --json`: `DeadJobView` as Foundation objects.
    public var summary: [String: Any] {
        QueueStats.object(DeadJobView(id: id, job: self)) as? [String: Any] ?? [:]
    }
}

extension DeadJobView {
    public init(id: String, job: Job?) {
        self.id = id
        self.job = job
    }
}
