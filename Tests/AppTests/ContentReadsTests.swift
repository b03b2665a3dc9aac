import Logging
@testable import RelocatorApp
import RelocatorCore
import RelocatorTesting
import Synchronization
import Testing

/// Submissions that miss the content cache together share one statement: a read that finds its
/// lanes busy waits and is answered by the next statement, with up to `batch` others.
@Suite struct ContentReadsTests {
    /// A gate the first run waits at until the test opens it.
    final class Gate: Sendable {
        private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))
        func wait() async {
            await withCheckedContinuation { continuation in
                let open = state.withLock { state -> Bool in
                    if !state.open { state.waiters.append(continuation) }
                    return state.open
                }
                if open { continuation.resume() }
            }
        }
        func open() {
            let waiters = state.withLock { state in
                state.open = true
                defer { state.waiters = [] }
                return state.waiters
            }
            waiters.forEach { $0.resume() }
        }
    }

    /// The statements a test's `run` was asked for, in order.
    final class Statements: Sendable {
        private let list = Mutex<[[Int64]]>([])
        /// Records one; its number (1 for the first).
        func record(_ cids: [Int64]) -> Int {
            list.withLock { list in
                list.append(cids)
                return list.count
            }
        }
        var all: [[Int64]] { list.withLock { $0 } }
        var count: Int { list.withLock { $0.count } }
    }

    static func until(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while !condition() {
            guard ContinuousClock.now < deadline else { throw CancellationError() }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    @Test func readsThatComeTogetherShareStatementsOfAtMostABatch() async throws {
        let reads = ContentReads<String>(lanes: 1, batch: 4)
        let gate = Gate()
        let runs = Statements()
        let run: ContentReads<String>.Run = { cids in
            if runs.record(cids) == 1 { await gate.wait() }
            // Odd cids exist.
            return Dictionary(uniqueKeysWithValues: cids.filter { $0 % 2 == 1 }.map { ($0, "content \($0)") })
        }
        let answers = try await withThrowingTaskGroup(of: (Int64, String?).self) { group in
            // (Opened however the test ends: a read held at it would keep the group waiting.)
            defer { gate.open() }
            group.addTask { (1, try await reads.read(1, run: run)) }
            try await Self.until { runs.count == 1 }
            // Nine more (one of them a cid already waiting) while the first statement runs.
            for cid: Int64 in [2, 3, 4, 5, 6, 7, 8, 9, 3] { group.addTask { (cid, try await reads.read(cid, run: run)) } }
            try await Self.until { reads.waiting == 9 }
            gate.open()
            var answers: [(Int64, String?)] = []
            for try await answer in group { answers.append(answer) }
            return answers
        }
        #expect(answers.count == 10)
        for (cid, answer) in answers { #expect(answer == (cid % 2 == 1 ? "content \(cid)" : nil)) }
        let statements = runs.all
        // 1 alone, then the nine waiting in statements of at most 4 cids, each cid once.
        #expect(statements.count == 4)
        #expect(statements.allSatisfy { $0.count <= 4 && Set($0).count == $0.count })
        #expect(statements.first == [1])
        #expect(Set(statements.dropFirst().joined()) == Set(2...9))
        #expect(reads.waiting == 0)
    }

    struct Refused: Error {}

    @Test func aFailedStatementFailsItsOwnReadsOnlyAndTheLaneGoesOn() async throws {
        let reads = ContentReads<String>(lanes: 1, batch: 16)
        let gate = Gate()
        let calls = Statements()
        let run: ContentReads<String>.Run = { cids in
            if calls.record(cids) == 1 {
                await gate.wait()
                throw Refused()
            }
            return Dictionary(uniqueKeysWithValues: cids.map { ($0, "content \($0)") })
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            defer { gate.open() }
            group.addTask { await #expect(throws: Refused.self) { try await reads.read(1, run: run) } }
            try await Self.until { calls.count == 1 }
            for cid: Int64 in [2, 3] {
                group.addTask {
                    let answer = try await reads.read(cid, run: run)
                    #expect(answer == "content \(cid)")
                }
            }
            try await Self.until { reads.waiting == 2 }
            gate.open()
            try await group.waitForAll()
        }
        #expect(calls.count == 2)
        // Alone again: no lane was lost.
        let alone = try await reads.read(5, run: run)
        #expect(alone == "content 5")
    }

    struct Lost: Error, TransientFailure {
        var isTransient: Bool { true }
    }

    static func settled(_ body: () async throws -> String?) async -> Result<String?, any Error> {
        do { return .success(try await body()) } catch { return .failure(error) }
    }

    /// A batch whose statement fails for a reason that is not transient (a row that cannot be
    /// decoded) is read again one cid at a time: only the bad cid's read fails. A transient
    /// failure fails the batch's reads, each with it.
    @Test func aBadRowFailsOnlyItsOwnReadAndALostConnectionFailsTheBatch() async throws {
        for transient in [false, true] {
            let reads = ContentReads<String>(lanes: 1, batch: 16)
            let gate = Gate()
            let statements = Statements()
            let run: ContentReads<String>.Run = { cids in
                if statements.record(cids) == 1 { await gate.wait() }
                if cids.count > 1 || cids == [3] { throw transient ? Lost() as any Error : Refused() }
                return [cids[0]: "content \(cids[0])"]
            }
            let answers = try await withThrowingTaskGroup(of: (Int64, Result<String?, any Error>).self) { group in
                defer { gate.open() }
                group.addTask { (1, await Self.settled { try await reads.read(1, run: run) }) }
                try await Self.until { statements.count == 1 }
                for cid: Int64 in [2, 3, 4] { group.addTask { (cid, await Self.settled { try await reads.read(cid, run: run) }) } }
                try await Self.until { reads.waiting == 3 }
                gate.open()
                var answers: [Int64: Result<String?, any Error>] = [:]
                for try await (cid, answer) in group { answers[cid] = answer }
                return answers
            }
            #expect((try? answers[1]?.get()) == "content 1")
            if transient {
                #expect(answers[2].map { if case .failure(is Lost) = $0 { true } else { false } } == true)
                #expect(answers[4].map { if case .failure(is Lost) = $0 { true } else { false } } == true)
                #expect(statements.count == 2)
            } else {
                #expect((try? answers[2]?.get()) == "content 2")
                #expect((try? answers[4]?.get()) == "content 4")
                #expect(answers[3].map { if case .failure(is Refused) = $0 { true } else { false } } == true)
                #expect(Array(statements.all.dropFirst(2)) == [[2], [3], [4]])
            }
        }
    }

    /// A read of a cid that a running statement is reading is not answered by it (that statement
    /// may have read the row before this read asked): it gets the next one.
    @Test func aReadThatAsksWhileItsCidIsBeingReadGetsTheNextStatement() async throws {
        let reads = ContentReads<String>(lanes: 1, batch: 16)
        let gate = Gate()
        let statements = Statements()
        let run: ContentReads<String>.Run = { cids in
            let number = statements.record(cids)
            if number == 1 { await gate.wait() }
            return [cids[0]: "statement \(number)"]
        }
        let (first, second) = try await withThrowingTaskGroup(of: (Int, String?).self) { group in
            defer { gate.open() }
            group.addTask { (1, try await reads.read(7, run: run)) }
            try await Self.until { statements.count == 1 }
            group.addTask { (2, try await reads.read(7, run: run)) }
            try await Self.until { reads.waiting == 1 }
            gate.open()
            var answers: [Int: String?] = [:]
            for try await (which, answer) in group { answers[which] = answer }
            return (answers[1] ?? nil, answers[2] ?? nil)
        }
        #expect(first == "statement 1")
        #expect(second == "statement 2")
    }

    /// A read that leads a batch and is cancelled (its request went away) does not fail the
    /// others' reads: their statement runs apart from its task.
    @Test func aCancelledLeaderDoesNotFailItsBatch() async throws {
        let reads = ContentReads<String>(lanes: 1, batch: 16)
        let firstGate = Gate(), secondGate = Gate()
        let statements = Statements()
        let run: ContentReads<String>.Run = { cids in
            let number = statements.record(cids)
            await (number == 1 ? firstGate : secondGate).wait()
            try Task.checkCancellation()
            return Dictionary(uniqueKeysWithValues: cids.map { ($0, "content \($0)") })
        }
        defer { firstGate.open(); secondGate.open() }
        let one = Task { try await reads.read(1, run: run) }
        try await Self.until { statements.count == 1 }
        // 2 and 3 wait; once 1's statement ends, 2 is handed the lane and leads 2 and 3.
        let two = Task { try await reads.read(2, run: run) }
        try await Self.until { reads.waiting == 1 }
        let three = Task { try await reads.read(3, run: run) }
        try await Self.until { reads.waiting == 2 }
        firstGate.open()
        #expect(try await one.value == "content 1")
        try await Self.until { statements.count == 2 }
        two.cancel()
        secondGate.open()
        #expect(try await three.value == "content 3")
        #expect(try await two.value == "content 2")
    }

    /// Under steady load the line of waiting reads never empties: what was taken from it is let
    /// go all the same.
    @Test func theWaitingLineLetsGoOfWhatWasTaken() {
        var line = WaitingLine<Int>()
        var next = 0
        func add(_ count: Int) {
            for _ in 0..<count {
                line.append(next)
                next += 1
            }
        }
        add(2)
        var taken: [Int] = []
        for _ in 0..<10_000 {
            add(3)
            taken += line.take(2)
            taken += line.take(2)
            add(1)
        }
        #expect(line.count == 2)
        #expect(line.retained < 200)
        taken += line.take(5)
        #expect(taken == Array(0..<next), "in arrival order, each once")
    }

    /// Through the application: ten submissions of contents not cached, made while the reads on
    /// both lanes are held, take fewer statements than submissions, and each gets its own
    /// content's job.
    @Test func submissionsThatMissTheCacheTogetherShareStatements() async throws {
        let store = MemoryStore()
        _ = try store.put((1...10).map { Content(cid: $0, filename: "f\($0).mp4", level: "bronze") })
        let gateway = HeldStoreGateway(MemoryStoreGateway(store))
        let queue = MemoryQueue()
        let app = App(queue: MemoryQueueGateway(queue), store: gateway, levels: LevelCache(maxAge: .seconds(86400)),
                      contents: ContentCache(maxAge: .seconds(86400)), logger: Logger(label: "test.app"))
        #expect(app.contentReads.lanes == 2)
        // The level table and policies are read once, before the calls counted.
        #expect(try await app.submit(cid: 1, count: 20000).result.outcome == .created)
        app.contents.clear()
        let before = gateway.calls
        gateway.hold(2)
        try await withThrowingTaskGroup(of: Void.self) { group in
            defer { gateway.release() }
            group.addTask { _ = try await app.submit(cid: 1, count: 30000) }
            group.addTask { _ = try await app.submit(cid: 2, count: 20000) }
            try await Self.until { gateway.holding == 2 }
            for cid: Int64 in 3...10 { group.addTask { _ = try await app.submit(cid: cid, count: 20000) } }
            try await Self.until { app.contentReads.waiting == 8 }
            gateway.release()
            try await group.waitForAll()
        }
        // The two held alone; the eight others in at most two statements (each lane, given back,
        // hands itself to one waiting read, which takes every other waiting one it can).
        #expect(gateway.calls - before <= 4)
        for cid: Int64 in 1...10 {
            #expect(queue.job(cid)?.dbLevel == "bronze")
            #expect(queue.job(cid)?.count == (cid == 1 ? 30000 : 20000))
        }
    }
}

/// A store gateway that counts its calls and can hold its next ones until released.
private final class HeldStoreGateway: StoreGateway {
    private let base: MemoryStoreGateway
    private let state = Mutex<(calls: Int, toHold: Int, holding: Int)>((0, 0, 0))
    private let gate = ContentReadsTests.Gate()

    init(_ base: MemoryStoreGateway) { self.base = base }

    var calls: Int { state.withLock { $0.calls } }
    var holding: Int { state.withLock { $0.holding } }
    func hold(_ count: Int) { state.withLock { $0.toHold = count } }
    func release() { gate.open() }

    func withStore<T: Sendable>(_ body: @escaping @Sendable (any ContentStoring) throws -> T) async throws -> T {
        let held = state.withLock { state -> Bool in
            state.calls += 1
            guard state.toHold > 0 else { return false }
            state.toHold -= 1
            state.holding += 1
            return true
        }
        if held { await gate.wait() }
        return try await base.withStore(body)
    }
    func open() throws -> any ContentStoring { try base.open() }
    var location: String { base.location }
    func close() {}
}
