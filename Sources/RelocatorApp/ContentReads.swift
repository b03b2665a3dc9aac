import RelocatorCore
import Synchronization

/// The reads of submissions that miss the content cache, several to one statement when they come
/// together. A read that finds fewer than `lanes` running runs one itself: its own cid and up to
/// `batch − 1` others that wait. One that finds every lane busy waits, and is then either answered
/// by a running read or handed the lane to run the next one (no read waits for a task of its own,
/// and a lane is given back only when nobody waits). Alone, a read costs what it did; under load
/// one `WHERE cid IN (…)` answers several submissions (PostgreSQL's CPU per content looked up fell
/// from 56 µs alone to 15 µs in fours on this machine).
///
/// A read waiting here is older than the statement that answers it: the age a submission gives
/// its read (taken before it asks) is an upper bound, as the queue's rule needs. A statement
/// answers only reads that asked before it started.
///
/// A read's own failure stays its own: a statement that answers others runs apart from the task
/// that leads it (a cancelled request does not fail its batch), and a batch whose statement fails
/// for a reason not transient (a row that cannot be decoded) is read again one cid at a time.
final class ContentReads<Answer: Sendable>: Sendable {
    /// What one batch's statement returns: an answer for each cid found (a cid missing is unknown).
    typealias Run = @Sendable ([Int64]) async throws -> [Int64: Answer]

    private enum Wake: Sendable {
        case run
        case answered(Result<Answer?, any Error>)
    }

    private struct Waiting {
        let cid: Int64
        let continuation: CheckedContinuation<Wake, Never>
    }

    private struct State {
        var running = 0
        var waiting = WaitingLine<Waiting>()

        mutating func claimLane(of lanes: Int) -> Bool {
            // Nobody may pass those already waiting.
            guard running < lanes, waiting.isEmpty else { return false }
            running += 1
            return true
        }
    }

    let lanes: Int
    let batch: Int
    private let state = Mutex(State())

    init(lanes: Int = 2, batch: Int = 16) {
        self.lanes = max(1, lanes)
        self.batch = max(1, batch)
    }

    /// How many reads wait for a lane or an answer now.
    var waiting: Int { state.withLock { $0.waiting.count } }

    /// The answer for `cid` (nil: no such content), read by `run` alone or with others.
    func read(_ cid: Int64, run: @escaping Run) async throws -> Answer? {
        if state.withLock({ $0.claimLane(of: lanes) }) { return try await lead(cid, run: run) }
        let wake = await withCheckedContinuation { (continuation: CheckedContinuation<Wake, Never>) in
            // A lane may have been given back between the check above and this one.
            let leads = state.withLock { state -> Bool in
                if state.claimLane(of: lanes) { return true }
                state.waiting.append(Waiting(cid: cid, continuation: continuation))
                return false
            }
            if leads { continuation.resume(returning: .run) }
        }
        switch wake {
        case .run: return try await lead(cid, run: run)
        case .answered(let answer): return try answer.get()
        }
    }

    /// Runs one statement on a lane this task holds, answers the others it took, and hands the lane
    /// to the next waiting read (or gives it back when none waits).
    private func lead(_ cid: Int64, run: @escaping Run) async throws -> Answer? {
        let others = state.withLock { $0.waiting.take(batch - 1) }
        var cids = [cid]
        for other in others where !cids.contains(other.cid) { cids.append(other.cid) }
        let answers = await Self.answers(cids, alone: others.isEmpty, run: run)
        for other in others { other.continuation.resume(returning: .answered(answers[other.cid] ?? .success(nil))) }
        let next = state.withLock { state -> Waiting? in
            if let next = state.waiting.take(1).first { return next }
            state.running -= 1
            return nil
        }
        next?.continuation.resume(returning: .run)
        return try (answers[cid] ?? .success(nil)).get()
    }

    /// Each cid's answer: the batch's statement, or — when it failed for a reason that is not
    /// transient — one statement per cid, so that one bad row fails only its own read.
    private static func answers(_ cids: [Int64], alone: Bool, run: @escaping Run) async -> [Int64: Result<Answer?, any Error>] {
        func all(_ result: Result<[Int64: Answer], any Error>, _ cids: [Int64]) -> [Int64: Result<Answer?, any Error>] {
            Dictionary(uniqueKeysWithValues: cids.map { cid in (cid, result.map { $0[cid] }) })
        }
        // Alone, the read is this task's own (its cancellation is its own too).
        if alone { return all(await Result { try await run(cids) }, cids) }
        let batch = await Result { try await Task { try await run(cids) }.value }
        guard case .failure(let error) = batch, cids.count > 1, (error as? any TransientFailure)?.isTransient != true else { return all(batch, cids) }
        var answers: [Int64: Result<Answer?, any Error>] = [:]
        for cid in cids {
            answers[cid] = await Result { try await Task { try await run([cid]) }.value }.map { $0[cid] }
        }
        return answers
    }
}

/// Waiting reads in arrival order: taken from the front, and the taken ones let go once they are
/// half the storage (under steady load the line never empties).
struct WaitingLine<Element> {
    private var storage: [Element] = []
    private var first = 0

    var count: Int { storage.count - first }
    var isEmpty: Bool { first == storage.count }
    /// Entries held, the taken ones not yet let go included.
    var retained: Int { storage.count }

    mutating func append(_ element: Element) { storage.append(element) }

    mutating func take(_ count: Int) -> [Element] {
        let end = min(storage.count, first + max(0, count))
        let taken = Array(storage[first..<end])
        first = end
        if first == storage.count {
            storage.removeAll(keepingCapacity: true)
            first = 0
        } else if first >= 64, first * 2 >= storage.count {
            storage.removeFirst(first)
            first = 0
        }
        return taken
    }
}

private extension Result where Failure == any Error {
    init(_ body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
