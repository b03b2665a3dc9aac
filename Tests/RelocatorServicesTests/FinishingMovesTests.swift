@testable import FileMover
import Foundation
import RelocatorCore
@testable import RelocatorServices
import Synchronization
import SystemPackage
import Testing
import TestSupport

/// Each level's moves wait for a finisher of their own: one whose fsync does not return holds up
/// only its level, and only until that fsync has waited past the patience.
@Suite struct FinishingMovesTests {
    /// Gold and silver, held, in a directory of the test's own (`remove()` once done), and lanes.
    struct Fixture {
        let directory: TemporaryDirectory
        let levels: HeldLevels
        let gold: LevelRoot
        let silver: LevelRoot
        let finishing = FinishingMoves()

        init() throws {
            let directory = try TemporaryDirectory("relocator-finishing")
            self.directory = directory
            do {
                for level in ["gold", "silver"] {
                    try FileManager.default.createDirectory(atPath: directory.path + "/" + level, withIntermediateDirectories: true)
                }
                levels = try HeldLevels(LevelDirectories([("gold", directory.path + "/gold"), ("silver", directory.path + "/silver")]))
                (gold, silver) = (try #require(levels.roots["gold"]), try #require(levels.roots["silver"]))
            } catch {
                directory.remove()
                throw error
            }
        }

        func remove() { directory.remove() }
    }

    /// A move out of `root` whose source directory is still to be synced (never synced here).
    static func move(_ root: LevelRoot, _ number: Int) throws -> FinishingMoves.Move {
        let fd = try FileDescriptor.open(root.directory, .readOnly, options: [.directory])
        let sync = try PendingDirectorySync(Descriptor(fd, display: root.directory), root: root, faults: nil)
        return FinishingMoves.Move(holdingKey: "0/\(number)", sync: sync) { _, _ in true }
    }

    /// An fsync of `root`'s that does not return until `release` is raised, under way once this returns.
    static func stallSync(_ root: LevelRoot, until release: StopSignal) throws {
        let began = StopSignal()
        Thread.detachNewThread {
            root.syncing {
                began.raise()
                release.wait(for: .seconds(600))
            }
        }
        try #require(began.wait(for: .seconds(60)))
    }

    @Test func anFsyncUnderWayPastThePatienceIsALevelThatDoesNotAnswer() throws {
        let f = try Fixture()
        defer { f.remove() }
        let (levels, gold) = (f.levels, f.gold)
        #expect(gold.syncWaited() == nil)
        #expect(try gold.syncing { 7 } == 7)
        #expect(gold.syncWaited() == nil)
        let release = StopSignal()
        defer { release.raise() }
        try Self.stallSync(gold, until: release)
        let now = ContinuousClock.now
        #expect(levels.syncsNotAnswering(patience: .seconds(5), at: now).isEmpty)
        #expect(levels.syncsNotAnswering(patience: .seconds(5), at: now + .seconds(6)).keys.sorted() == ["gold"])
    }

    @Test func aLevelsBacklogHoldsUpItsSlotsUntilAnFsyncOfItHasWaitedPastThePatience() throws {
        let f = try Fixture()
        defer { f.remove() }
        let (gold, silver, finishing) = (f.gold, f.silver, f.finishing)
        let patience = Duration.seconds(5)
        #expect(try finishing.add(Self.move(gold, 1)))
        #expect(try !finishing.add(Self.move(gold, 2)))
        #expect(finishing.isFull("gold", limit: 2, patience: patience))
        #expect(!finishing.isFull("gold", limit: 3, patience: patience))
        #expect(!finishing.isFull("silver", limit: 1, patience: patience))

        // In the finisher's hands, the moves still count.
        #expect(finishing.take("gold", waitingUpTo: .zero).count == 2)
        #expect(finishing.count("gold") == 2)
        let release = StopSignal()
        defer { release.raise() }
        try Self.stallSync(gold, until: release)
        let now = ContinuousClock.now
        #expect(finishing.isFull("gold", limit: 2, patience: patience, at: now))
        // Past the patience, the slots hand over.
        #expect(!finishing.isFull("gold", limit: 2, patience: patience, at: now + patience + .milliseconds(1)))
        // Another level's lane is its own.
        #expect(try finishing.add(Self.move(silver, 3)))
        #expect(finishing.isFull("silver", limit: 1, patience: patience, at: now + patience + .milliseconds(1)))

        finishing.roundEnded("gold", putBack: [try Self.move(gold, 2)])
        #expect(finishing.count("gold") == 1)
        #expect(finishing.take("gold", waitingUpTo: .zero).map(\.holdingKey) == ["0/2"])
    }

    @Test func aStopWaitsForTheFinishersButNotForOneStuckInAnFsyncOnceCancelled() throws {
        let f = try Fixture()
        defer { f.remove() }
        let (gold, silver, finishing) = (f.gold, f.silver, f.finishing)
        #expect(try finishing.add(Self.move(gold, 1)))
        #expect(try finishing.add(Self.move(silver, 2)))
        _ = finishing.take("gold", waitingUpTo: .zero)
        let release = StopSignal()
        defer { release.raise() }
        try Self.stallSync(gold, until: release)
        // Silver's finisher ends (its move done); gold's is in an fsync.
        _ = finishing.take("silver", waitingUpTo: .zero)
        finishing.roundEnded("silver", putBack: [])
        finishing.ended(lane: "silver")

        /// `waitForFinishers` on a thread of its own: its result once it returned.
        final class Waiting: Sendable {
            let done = StopSignal()
            let result = Mutex<[String]?>(nil)
        }
        func waiting(cancel: StopSignal, patience: Duration) -> Waiting {
            let waiting = Waiting()
            Thread.detachNewThread {
                let left = finishing.waitForFinishers(cancel: cancel, patience: patience)
                waiting.result.withLock { $0 = left }
                waiting.done.raise()
            }
            return waiting
        }
        // Neither without a cancel, nor before the fsync has waited past the patience, does the
        // stop leave a finisher behind.
        let cancelled = StopSignal()
        cancelled.raise()
        let notCancelled = waiting(cancel: StopSignal(), patience: .zero)
        let notStuck = waiting(cancel: cancelled, patience: .seconds(3600))
        // Once cancelled and past the patience, the wait ends naming gold.
        let stuck = waiting(cancel: cancelled, patience: .zero)
        #expect(stuck.done.wait(for: .seconds(60)))
        #expect(stuck.result.withLock { $0 } == ["gold"])
        #expect(!notCancelled.done.isRaised && !notStuck.done.isRaised)
        // Every finisher ended: the waits end with none left.
        finishing.ended(lane: "gold")
        #expect(notCancelled.done.wait(for: .seconds(60)) && notStuck.done.wait(for: .seconds(60)))
        #expect(notCancelled.result.withLock { $0 } == [] && notStuck.result.withLock { $0 } == [])
    }
}
