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

        /// Silver opened, gold at `goldDirectory` (default: its own) not opened yet.
        func held(goldDirectory: String? = nil) throws -> HeldLevels {
            try HeldLevels(LevelDirectories([("gold", goldDirectory ?? root.path + "/gold"), ("silver", root.path + "/silver")]),
                           unopened: ["gold": "did not answer"])
        }

        func openLate(_ held: HeldLevels) {
            LevelPreparation.openLate(held, level: "gold", queue: { self.queue }, logger: logger)
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
        #expect(why.contains("\(site.root.path)/nowhere is not open yet") && why.contains("No such file or directory"), "\(why)")
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
}
