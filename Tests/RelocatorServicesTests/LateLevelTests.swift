import FileMover
import Foundation
import Logging
import RelocatorCore
import RelocatorServices
import RelocatorTesting
import Testing
import TestSupport

/// A level whose directory did not answer when the worker started is held "unopened": out of
/// service, with why, until `LevelPreparation.openLate` opens it — checked against the other
/// levels and prepared as at the start. Real directories and the memory queue.
@Suite struct LateLevelTests {
    final class Site: @unchecked Sendable {
        let root: TemporaryDirectory
        let queue = MemoryQueue()
        let logger = Logger(label: "late-level-tests")

        init() throws {
            root = try TemporaryDirectory("relocator-late-level")
            for level in ["gold", "silver"] {
                try FileManager.default.createDirectory(atPath: root.path + "/" + level, withIntermediateDirectories: true)
            }
        }

        /// Silver opened (and resolved, as a worker's start does), gold at `goldDirectory`
        /// (default: its own) and the `unopened` others not opened yet.
        func held(goldDirectory: String? = nil, also: [(String, String)] = []) throws -> HeldLevels {
            let silver = LevelDirectories([("silver", root.path + "/silver")])
            var unopened = ["gold": "did not answer"]
            for (level, _) in also { unopened[level] = "did not answer" }
            return try HeldLevels(LevelDirectories([("gold", goldDirectory ?? root.path + "/gold"), ("silver", root.path + "/silver")] + also),
                                  resolved: try verifyLevelLayout(silver), unopened: unopened)
        }

        /// Gold, silver and bronze (bronze made here), gold not opened yet when `goldUnopened`.
        func threeLevels(goldUnopened: Bool) throws -> HeldLevels {
            try FileManager.default.createDirectory(atPath: root.path + "/bronze", withIntermediateDirectories: true)
            return try HeldLevels(LevelDirectories(["gold", "silver", "bronze"].map { ($0, root.path + "/" + $0) }),
                                  unopened: goldUnopened ? ["gold": "did not answer"] : [:])
        }

        /// `filename` from silver to bronze, gold the other level searched.
        func silverToBronze(_ filename: String, expected: Checksum? = nil) throws -> MoveRequest {
            MoveRequest(filename: try Filename(filename), source: LevelPlace(level: "silver", directory: root.path + "/silver"),
                        target: LevelPlace(level: "bronze", directory: root.path + "/bronze"),
                        others: [LevelPlace(level: "gold", directory: root.path + "/gold")], cid: 7, gen: 1, expectedChecksum: expected)
        }

        func openLate(_ held: HeldLevels, _ level: String = "gold") {
            LevelPreparation.openLate(held, level: level, queue: { self.queue }, logger: logger)
        }

        func seen() throws -> [String] {
            guard case .names(let seen) = try queue.control(.levelsSeen(adding: [])) else { return [] }
            return seen.sorted()
        }
    }

    @Test func anUnopenedLevelIsOutOfServiceUntilOpenedThenPreparedAndHeld() throws {
        let site = try Site()
        defer { site.root.remove() }
        let held = try site.held()
        #expect(held.unavailable("gold") == "did not answer")
        #expect(held.unavailable() == ["gold": "did not answer"])
        #expect(held.roots.keys.sorted() == ["silver"])
        #expect(held.holds("gold") && held.holds("silver") && !held.holds("bronze"))

        site.openLate(held)
        #expect(held.roots.keys.sorted() == ["gold", "silver"])
        #expect(held.unavailable("gold") == nil)
        #expect(held.unopenedPlace("gold") == nil)
        // Prepared as at the start: a level never seen gets its reserved directory and is recorded.
        #expect(FileManager.default.fileExists(atPath: site.root.path + "/gold/" + ReservedDirectory.name))
        #expect(try site.seen() == ["gold"])
        // Held from now on: a second call changes nothing.
        let root = held.roots["gold"]
        site.openLate(held)
        #expect(held.roots["gold"] === root)
    }

    @Test func anUnopenedLevelThatIsAnotherLevelsDirectoryStaysOutOfService() throws {
        let site = try Site()
        defer { site.root.remove() }
        // Gold's path is a link to silver's directory: two names for one directory.
        try FileManager.default.createSymbolicLink(atPath: site.root.path + "/gold-link", withDestinationPath: site.root.path + "/silver")
        let held = try site.held(goldDirectory: site.root.path + "/gold-link")
        site.openLate(held)
        #expect(held.roots["gold"] == nil)
        let why = try #require(held.unavailable("gold"))
        #expect(why.contains("levels 'silver' and 'gold' are the same directory") || why.contains("levels 'gold' and 'silver' are the same directory"), "\(why)")
        #expect(!FileManager.default.fileExists(atPath: site.root.path + "/silver/" + ReservedDirectory.name))
        #expect(try site.seen().isEmpty)
    }

    @Test func anUnopenedLevelInsideAnotherStaysOutOfService() throws {
        let site = try Site()
        defer { site.root.remove() }
        try FileManager.default.createDirectory(atPath: site.root.path + "/silver/inner", withIntermediateDirectories: true)
        let held = try site.held(goldDirectory: site.root.path + "/silver/inner")
        site.openLate(held)
        #expect(held.roots["gold"] == nil)
        #expect(held.unavailable("gold")?.contains("inside") == true, "\(held.unavailable("gold") ?? "")")
    }

    @Test func anUnopenedLevelWhoseDirectoryIsMissingStaysOutOfServiceWithWhy() throws {
        let site = try Site()
        defer { site.root.remove() }
        let held = try site.held(goldDirectory: site.root.path + "/nowhere")
        site.openLate(held)
        #expect(held.roots["gold"] == nil)
        let why = try #require(held.unavailable("gold"))
        #expect(why.contains("\(site.root.path)/nowhere, which did not answer at the start, cannot be opened yet") && why.contains("No such file or directory"), "\(why)")
        // Once the directory is there, the next check opens it.
        try FileManager.default.createDirectory(atPath: site.root.path + "/nowhere", withIntermediateDirectories: true)
        site.openLate(held)
        #expect(held.unavailable("gold") == nil)
        #expect(held.roots["gold"]?.directory == site.root.path + "/nowhere")
    }

    @Test func anUnopenedLevelSeenBeforeWithoutItsReservedDirectoryIsABareMountpoint() throws {
        let site = try Site()
        defer { site.root.remove() }
        _ = try site.queue.control(.levelsSeen(adding: ["gold"]))
        let held = try site.held()
        site.openLate(held)
        // Held, but withdrawn as at the start: nothing is created in it.
        #expect(held.roots["gold"] != nil)
        #expect(held.unavailable("gold") == LevelReadiness.reason(level: "gold", directory: site.root.path + "/gold"))
        #expect(!FileManager.default.fileExists(atPath: site.root.path + "/gold/" + ReservedDirectory.name))
    }

    /// Only the level opened looks at its disk: the others are checked as they were resolved when
    /// opened, so one whose disk does not answer (here: whose directory is gone) holds up nothing.
    @Test func aLevelOpenedLateIsCheckedAgainstTheOthersWithoutLookingAtTheirDisks() throws {
        let site = try Site()
        defer { site.root.remove() }
        let held = try site.held()
        try FileManager.default.moveItem(atPath: site.root.path + "/silver", toPath: site.root.path + "/silver-elsewhere")
        site.openLate(held)
        #expect(held.unavailable("gold") == nil, "\(held.unavailable("gold") ?? "")")
        #expect(held.roots["gold"] != nil)
    }

    /// A level whose disk was mounted again since the start (a withdrawn level held anew) is
    /// checked against by the directory held now, not the one resolved at the start.
    @Test func aLevelOpenedLateIsCheckedAgainstTheDirectoryALevelHoldsSinceItsDiskCameBack() throws {
        let site = try Site()
        defer { site.root.remove() }
        let held = try site.held(goldDirectory: site.root.path + "/gold-link")
        // Silver's disk comes back as another directory at the same path; gold's path names it.
        held.roots["silver"]!.withdraw(because: "unmounted")
        try FileManager.default.moveItem(atPath: site.root.path + "/silver", toPath: site.root.path + "/silver-before")
        try FileManager.default.createDirectory(atPath: site.root.path + "/silver", withIntermediateDirectories: true)
        held.replace(try LevelRoot(LevelPlace(level: "silver", directory: site.root.path + "/silver")))
        try FileManager.default.createSymbolicLink(atPath: site.root.path + "/gold-link", withDestinationPath: site.root.path + "/silver")
        site.openLate(held)
        #expect(held.roots["gold"] == nil)
        #expect(held.unavailable("gold")?.contains("are the same directory") == true, "\(held.unavailable("gold") ?? "")")
    }

    /// Two levels opened late for one directory: the first is held, the second refused — each
    /// level opened late is checked against those opened before it.
    @Test func twoLevelsOpenedLateForOneDirectoryAreNotBothHeld() throws {
        let site = try Site()
        defer { site.root.remove() }
        let held = try site.held(also: [("gold2", site.root.path + "/gold")])
        site.openLate(held, "gold")
        site.openLate(held, "gold2")
        #expect(held.roots["gold"] != nil && held.roots["gold2"] == nil)
        #expect(held.unavailable("gold2")?.contains("levels 'gold' and 'gold2' are the same directory") == true, "\(held.unavailable("gold2") ?? "")")
        #expect(held.unavailable("gold") == nil)
    }

    /// A move does not open a level that is not opened yet, or out of service, by its path, nor
    /// search it for a file missing at its source: it waits (`level_unavailable`), instead of
    /// calling the file missing — or waiting on a disk that does not answer.
    @Test func aMoveNeitherOpensNorSearchesALevelNotOpenedOrOutOfService() throws {
        let site = try Site()
        defer { site.root.remove() }
        let request = try site.silverToBronze("gone.bin")
        func outcome(_ held: HeldLevels) -> MoveError.Kind? {
            do {
                _ = try FileMover(levels: held).move(request)
                return nil
            } catch {
                return (error as? MoveError)?.kind
            }
        }
        #expect(outcome(try site.threeLevels(goldUnopened: true)) == .levelUnavailable)
        let all = try site.threeLevels(goldUnopened: false)
        all.markOutOfService(["gold": "its directory has not answered a check"])
        #expect(outcome(all) == .levelUnavailable)
        // In service, it is searched: the file is nowhere.
        all.markOutOfService([:])
        #expect(outcome(all) == .sourceMissing)
    }

    /// A delivery that stopped after it removed the source and before its ack left the copy at the
    /// target: the next delivery finishes it from that copy (its checksum proves it) though a third
    /// level is out of service — it does not wait for a level it need not search.
    @Test func aCopyAtTheTargetThatProvesItselfIsFinishedWhileAnotherLevelIsOutOfService() throws {
        let site = try Site()
        defer { site.root.remove() }
        let held = try site.threeLevels(goldUnopened: true)
        let copy = site.root.path + "/bronze/kept.bin"
        #expect(FileManager.default.createFile(atPath: copy, contents: Data(repeating: 7, count: 4096)))
        let checksum = try Checksum(algorithm: .xxh128, hex: try TestFiles.xxh128(copy))
        let result = try FileMover(levels: held).move(try site.silverToBronze("kept.bin", expected: checksum))
        #expect(result.checksum == checksum)
        #expect(FileManager.default.fileExists(atPath: copy))
    }
}
