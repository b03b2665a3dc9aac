import Logging
import RelocatorApp
import RelocatorCore
import RelocatorTesting
import Synchronization
import Testing

/// Answers kept briefly (the placement page's plan), on a clock the test moves.
@Suite struct RecentAnswersTests {
    final class Clock: Sendable {
        let base = ContinuousClock.now
        let offset = Mutex<Duration>(.zero)
        var now: ContinuousClock.Instant { base + offset.withLock { $0 } }
        func advance(_ by: Duration) { offset.withLock { $0 += by } }
    }

    final class Counter: Sendable {
        let calls = Mutex(0)
        func next() -> Int { calls.withLock { $0 += 1; return $0 } }
    }

    @Test func aSecondReaderWithinTheWhileGetsTheSameAnswerWithoutAComputation() async throws {
        let clock = Clock()
        let answers = RecentAnswers(now: { clock.now })
        let counter = Counter()
        #expect(try await answers.value("plan", maxAge: .seconds(2)) { counter.next() } == 1)
        clock.advance(.milliseconds(1999))
        #expect(try await answers.value("plan", maxAge: .seconds(2)) { counter.next() } == 1)
        #expect(counter.calls.withLock { $0 } == 1)
    }

    @Test func anAnswerOlderThanTheWhileIsComputedAgain() async throws {
        let clock = Clock()
        let answers = RecentAnswers(now: { clock.now })
        let counter = Counter()
        _ = try await answers.value("plan", maxAge: .seconds(2)) { counter.next() }
        clock.advance(.seconds(2))
        #expect(try await answers.value("plan", maxAge: .seconds(2)) { counter.next() } == 2)
    }

    @Test func aFailureIsNotKeptAndNamesAreApart() async throws {
        struct Down: Error {}
        let answers = RecentAnswers()
        await #expect(throws: Down.self) { try await answers.value("plan", maxAge: .seconds(60)) { () throws -> Int in throw Down() } }
        #expect(try await answers.value("plan", maxAge: .seconds(60)) { 7 } == 7)
        #expect(try await answers.value("other", maxAge: .seconds(60)) { 8 } == 8)
        answers.clear()
        #expect(try await answers.value("plan", maxAge: .seconds(60)) { 9 } == 9)
    }

    @Test func aChangeOfALevelDropsTheAnswersKept() async throws {
        let app = App(queue: MemoryQueueGateway(), store: MemoryStoreGateway(), logger: Logger(label: "test.app"))
        let counter = Counter()
        _ = try await app.recent.value("plan", maxAge: .seconds(60)) { counter.next() }
        #expect(try await app.recent.value("plan", maxAge: .seconds(60)) { counter.next() } == 1)
        var edit = LevelPolicy.Edit()
        edit.highWater = .set(90)
        _ = try await app.setLevel("gold", min: nil, max: nil, edit: edit)
        #expect(try await app.recent.value("plan", maxAge: .seconds(60)) { counter.next() } == 2)
    }
}
