@testable import FileMover
import Foundation
import RelocatorCore
@testable import RelocatorServices
import Synchronization
import SystemPackage
import Testing
import TestSupport

/// Each level's moves wait for a finisher of their own: one whose fsync does not return holds up
/// only its level, and only until it has waited past the patience.
@Suite struct FinishingMovesTests {
    /// A move of `level` whose pending sync is of a real directory (never synced here).
    static func move(_ level: String, in directory: TemporaryDirectory, _ number: Int) throws -> FinishingMoves.Move {
        let fd = try FileDescriptor.open(directory.path, .readOnly, options: [.directory])
        let sync = try PendingDirectorySync(Descriptor(fd, display: directory.path), level: level, faults: nil)
        return FinishingMoves.Move(holdingKey: "0/\(number)", sync: sync) { _, _ in true }
    }

    @Test func aLevelsBacklogHoldsUpItsSlotsUntilItsFsyncHasWaitedPastThePatience() throws {
        let directory = try TemporaryDirectory("relocator-finishing")
        defer { directory.remove() }
        let finishing = FinishingMoves()
        let patience = Duration.seconds(5)
        #expect(try finishing.add(Self.move("gold", in: directory, 1)))
        #expect(try !finishing.add(Self.move("gold", in: directory, 2)))
        #expect(finishing.isFull("gold", limit: 2, patience: patience))
        #expect(!finishing.isFull("gold", limit: 3, patience: patience))
        #expect(!finishing.isFull("silver", limit: 1, patience: patience))

        // In the finisher's hands, the moves still count.
        #expect(finishing.take("gold", waitingUpTo: .zero).count == 2)
        #expect(finishing.count("gold") == 2)
        finishing.syncing("gold", true)
        let now = ContinuousClock.now
        #expect(finishing.isFull("gold", limit: 2, patience: patience, at: now))
        #expect(finishing.notAnswering(patience: patience, at: now).isEmpty)
        // Past the patience, the slots hand over and the level does not answer.
        let later = now + patience + .milliseconds(1)
        #expect(!finishing.isFull("gold", limit: 2, patience: patience, at: later))
        #expect(finishing.notAnswering(patience: patience, at: later).keys.sorted() == ["gold"])
        // Another level's lane is its own.
        #expect(try finishing.add(Self.move("silver", in: directory, 3)))
        #expect(finishing.take("silver", waitingUpTo: .zero).count == 1)

        finishing.syncing("gold", false)
        #expect(finishing.notAnswering(patience: patience, at: later).isEmpty)
        finishing.roundEnded("gold", putBack: [try Self.move("gold", in: directory, 2)])
        #expect(finishing.count("gold") == 1)
        #expect(finishing.take("gold", waitingUpTo: .zero).map(\.holdingKey) == ["0/2"])
    }

    @Test func aStopWaitsForTheFinishersButNotForOneStuckInAnFsyncOnceCancelled() throws {
        let directory = try TemporaryDirectory("relocator-finishing")
        defer { directory.remove() }
        let finishing = FinishingMoves()
        #expect(try finishing.add(Self.move("gold", in: directory, 1)))
        #expect(try finishing.add(Self.move("silver", in: directory, 2)))
        _ = finishing.take("gold", waitingUpTo: .zero)
        finishing.syncing("gold", true)
        // Silver's finisher ends (its move done); gold's is stuck: once the moves are cancelled,
        // the wait ends naming gold.
        _ = finishing.take("silver", waitingUpTo: .zero)
        finishing.roundEnded("silver", putBack: [])
        finishing.ended(lane: "silver")
        let cancel = StopSignal()
        cancel.raise()
        #expect(finishing.waitForFinishers(cancel: cancel, patience: .zero) == ["gold"])

        // Without a cancel, the wait lasts until every finisher has ended.
        let done = StopSignal()
        let result = Mutex<[String]?>(nil)
        Thread.detachNewThread {
            result.withLock { $0 = finishing.waitForFinishers(cancel: StopSignal(), patience: .zero) }
            done.raise()
        }
        #expect(!done.wait(for: .milliseconds(300)))
        finishing.ended(lane: "gold")
        #expect(done.wait(for: .seconds(30)))
        #expect(result.withLock { $0 } == [])
    }
}
