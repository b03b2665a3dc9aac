import Foundation
import RelocatorApp
import RelocatorCore
import Synchronization
import Testing

/// `DiskLooks`: each level's looks on a queue of their own, waited for at most the patience; a
/// level whose look does not return is "not answering", at once for the looks after it, and only
/// that level.
struct DiskLooksTests {
    /// A look at gold that waits until released.
    final class Gate: Sendable {
        let released = DispatchSemaphore(value: 0)
        let runs = Mutex(0)

        func hang() -> Int {
            runs.withLock { $0 += 1 }
            released.wait()
            return 1
        }
    }

    @Test func aLookThatDoesNotReturnIsNotAnsweringAndHoldsUpOnlyItsLevel() async throws {
        let looks = DiskLooks(patience: .milliseconds(200))
        let gate = Gate()
        defer { gate.released.signal() }
        guard case .notAnswering = await looks.look("gold", { gate.hang() }) else {
            Issue.record("a look that does not return is answered 'not answering'")
            return
        }
        // The next look at gold is answered at once, and not made: nothing more waits on that disk.
        guard case .notAnswering = await looks.look("gold", { gate.hang() }) else {
            Issue.record("a look after one under way past the patience is not answering")
            return
        }
        #expect(gate.runs.withLock { $0 } == 1)
        // Another level answers meanwhile.
        guard case .answered(.success(let value)) = await looks.look("silver", { 7 }) else {
            Issue.record("another level's look is answered")
            return
        }
        #expect(value == 7)

        // Once the look under way returns, gold answers again.
        gate.released.signal()
        let deadline = ContinuousClock.now + .seconds(60)
        var answered = false
        while !answered && ContinuousClock.now < deadline {
            if case .answered(.success(let value)) = await looks.look("gold", { 3 }) {
                answered = value == 3
            } else {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        #expect(answered)
        #expect(gate.runs.withLock { $0 } == 1)
    }

    /// A look queued behind one that does not return, before the patience is over, is answered
    /// "not answering" with it and never made (nor is any later one, until the first returns).
    @Test func aLookQueuedBehindOneThatDoesNotReturnIsNeverMade() async throws {
        let looks = DiskLooks(patience: .seconds(1))
        let gate = Gate()
        defer { gate.released.signal() }
        async let first = looks.look("gold", { gate.hang() })
        // Queued behind it (the first look is under way, or about to be).
        async let second = looks.look("gold", { gate.hang() })
        let outcomes = await [first, second]
        for outcome in outcomes {
            guard case .notAnswering = outcome else {
                Issue.record("a look behind one that does not return is not answering: \(outcome)")
                return
            }
        }
        #expect(gate.runs.withLock { $0 } == 1)
    }

    @Test func aLookThatFailsIsAnsweredWithItsError() async {
        struct Refused: Error {}
        let looks = DiskLooks(patience: .seconds(30))
        guard case .answered(.failure(let error)) = await looks.look("gold", { () throws -> Int in throw Refused() }) else {
            Issue.record("a failing look is answered with its error")
            return
        }
        #expect(error is Refused)
    }
}
