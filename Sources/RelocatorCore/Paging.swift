/// Paging of the operators' lists (the dead letters, the retrying and deferred jobs, the
/// relocations, the plan): a page is at most `limit` items after a cursor, with the total the
/// list holds and the cursor of the next page. A cursor names the last item shown by its place in
/// an order of the items' own keys — never an index — so items purged or added between two pages
/// make the next page neither skip nor repeat one.
public struct PageRequest: Sendable, Equatable {
    public var limit: Int
    /// The `next` of the page before, nil for the first page.
    public var cursor: String?

    public static let defaultLimit = 50
    public static let maximumLimit = 1000
    /// Longer cursors are not ones this code gave out.
    public static let maximumCursorLength = 256

    public init(limit: Int = PageRequest.defaultLimit, cursor: String? = nil) {
        self.limit = min(max(1, limit), Self.maximumLimit)
        self.cursor = cursor.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Why a limit or a cursor given from outside is not one: nil when both are fine.
    public static func problem(limit: Int64?, cursor: String?) -> String? {
        if let limit, !(1...Int64(maximumLimit)).contains(limit) {
            return "limit must be a whole number from 1 to \(maximumLimit), got \(limit)"
        }
        if let cursor, cursor.utf8.count > maximumCursorLength || cursor.contains(where: { $0.isNewline }) {
            return "cursor is not one this API gave out (use next_cursor of the page before)"
        }
        return nil
    }
}

public struct Page<Item: Sendable>: Sendable {
    public var items: [Item]
    /// How many items the whole list holds now.
    public var total: Int
    /// The cursor of the next page; nil on the last one.
    public var next: String?

    public init(items: [Item], total: Int, next: String?) {
        self.items = items
        self.total = total
        self.next = next
    }

    public func map<Other: Sendable>(_ transform: (Item) throws -> Other) rethrows -> Page<Other> {
        Page<Other>(items: try items.map(transform), total: total, next: next)
    }
}

/// The order the dead letters are paged in: the newest jobs first (a job's generation is the time,
/// in ms, its current move was queued), then by cid; anything in the list that is not a job id
/// comes last, by its text. The key is the id itself, so a cursor is the id last shown.
public struct DeadLetterOrder: Comparable, Sendable {
    let id: JobID?
    let text: String

    public init(_ text: String) {
        self.text = text
        id = JobID(text)
    }

    public static func < (a: DeadLetterOrder, b: DeadLetterOrder) -> Bool {
        switch (a.id, b.id) {
        case let (x?, y?):
            if x.gen != y.gen { return x.gen > y.gen }
            if x.cid != y.cid { return x.cid > y.cid }
            return a.text < b.text
        case (.some, nil): return true
        case (nil, .some): return false
        case (nil, nil): return a.text < b.text
        }
    }

    public static func == (a: DeadLetterOrder, b: DeadLetterOrder) -> Bool { a.text == b.text }

    /// The page of `ids` (every id of the list, in any order) after `cursor`, in this order: at
    /// most `limit`, the cursor of the next page when more follow, and the total.
    public static func page(_ ids: [String], after cursor: String?, limit: Int) -> Page<String> {
        let after = cursor.map(DeadLetterOrder.init)
        var seen = Set<String>()
        var candidates: [DeadLetterOrder] = []
        for id in ids where seen.insert(id).inserted {
            let key = DeadLetterOrder(id)
            if let after, !(after < key) { continue }
            candidates.append(key)
        }
        let chosen = smallest(candidates, count: limit + 1)
        let items = chosen.prefix(limit).map(\.text)
        return Page(items: Array(items), total: seen.count, next: chosen.count > limit ? items.last : nil)
    }
}

/// The order the retrying and deferred jobs are paged in: soonest due first (their score), then by
/// id. A cursor is `<score> <id>` of the last item shown.
public struct ScheduleOrder: Comparable, Sendable {
    public let score: Double
    public let member: String

    public init(score: Double, member: String) {
        self.score = score
        self.member = member
    }

    public static func < (a: ScheduleOrder, b: ScheduleOrder) -> Bool {
        a.score != b.score ? a.score < b.score : Array(a.member.utf8).lexicographicallyPrecedes(Array(b.member.utf8))
    }

    /// `<score> <member>`: what `init(cursor:)` reads back.
    public var cursor: String { "\(ScheduleOrder.scoreText(score)) \(member)" }

    /// A score as Redis reads it back exactly (whole numbers without a fraction).
    public static func scoreText(_ score: Double) -> String {
        if score.rounded() == score, abs(score) < 9.0e15 { return String(Int64(score)) }
        return "\(score)"
    }

    public init?(cursor: String) {
        guard let space = cursor.firstIndex(of: " "), let score = Double(cursor[..<space]), score.isFinite else { return nil }
        let member = String(cursor[cursor.index(after: space)...])
        guard !member.isEmpty else { return nil }
        self.init(score: score, member: member)
    }
}

/// The `count` smallest of `items`, in order (a partial sort: the whole list is never sorted).
public func smallest<T: Comparable>(_ items: [T], count: Int) -> [T] {
    guard count > 0 else { return [] }
    if items.count <= count { return items.sorted() }
    // A max-heap of the `count` smallest seen so far.
    var heap: [T] = []
    heap.reserveCapacity(count)
    func siftUp(_ index: Int) {
        var child = index
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[parent] < heap[child] else { return }
            heap.swapAt(parent, child)
            child = parent
        }
    }
    func siftDown(_ index: Int) {
        var parent = index
        while true {
            let left = 2 * parent + 1, right = left + 1
            var largest = parent
            if left < heap.count, heap[largest] < heap[left] { largest = left }
            if right < heap.count, heap[largest] < heap[right] { largest = right }
            if largest == parent { return }
            heap.swapAt(parent, largest)
            parent = largest
        }
    }
    for item in items {
        if heap.count < count {
            heap.append(item)
            siftUp(heap.count - 1)
        } else if item < heap[0] {
            heap[0] = item
            siftDown(0)
        }
    }
    return heap.sorted()
}
