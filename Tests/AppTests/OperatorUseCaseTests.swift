import Foundation
import Logging
import RelocatorApp
import RelocatorCore
import RelocatorTesting
import Testing

/// The operators' use cases (`levels`, `contents`, `relocations`, `dlq`) over the memory queue
/// and store, without servers.
@Suite struct OperatorUseCaseTests {
    let queue = MemoryQueue()
    let store: MemoryStore
    let app: App

    init() {
        self.init(levels: LevelRange.defaults)
    }

    init(levels: [LevelRange]) {
        store = MemoryStore(levels: levels)
        app = App(queue: MemoryQueueGateway(queue), store: MemoryStoreGateway(store), levels: LevelCache(maxAge: .zero),
                  logger: Logger(label: "test.app"))
    }

    static func code(_ error: any Error) -> String? { (error as? AppError)?.code }

    // MARK: - The level table

    @Test func anEmptyLevelTableIsSeededOnceAndShownWithItsPolicies() async throws {
        let empty = OperatorUseCaseTests(levels: [])
        #expect(try await empty.app.levelSettings().isEmpty)
        let seeded = try await empty.app.levelSettings(seeding: LevelRange.defaults)
        #expect(seeded.map(\.range.name) == ["bronze", "silver", "gold"])
        #expect(seeded.allSatisfy { $0.policy == LevelPolicy() })
        await #expect(throws: (any Error).self) { try await empty.app.levelSettings(seeding: LevelRange.defaults) }
        #expect(try await empty.app.levelNames() == ["bronze", "silver", "gold"])
    }

    @Test func aRefusedPolicyChangesNeitherThePolicyNorTheRange() async throws {
        var edit = LevelPolicy.Edit()
        edit.highWater = .set(50)
        edit.lowWater = .set(80)
        await #expect { try await app.setLevel("gold", min: 20_000, max: nil, edit: edit) } throws: {
            Self.code($0) == "bad_request" && "\($0)".hasSuffix("; nothing changed")
        }
        #expect(try store.levels().first { $0.name == "gold" }?.minCounts == 10_000)
        #expect(try store.policies()["gold"] == nil)
    }

    /// A level's counts stay within what a count can be (2^53 − 1): `/v1/levels` answers no number
    /// a JSON client cannot hold.
    @Test func aLevelsCountsAboveTheCountBoundAreRefused() async throws {
        for (low, high) in [(10_000, Int64.max), (CountBound.max + 1, CountBound.max + 2), (-1, 5)] as [(Int64, Int64)] {
            await #expect { try await app.setLevel("gold", min: low, max: high) } throws: {
                Self.code($0) == "bad_request" && "\($0)".contains("must be a whole number between 0 and 9007199254740991") && "\($0)".hasSuffix("; nothing changed")
            }
        }
        #expect(try store.levels().first { $0.name == "gold" }.map { [$0.minCounts, $0.maxCounts] } == [10_000, 99_999])
        #expect(try await app.setLevel("gold", min: 10_000, max: CountBound.max).range?.range.maxCounts == CountBound.max)
    }

    @Test func aNewLevelNeedsBothCountsAndAnExistingOneKeepsTheCountNotGiven() async throws {
        var edit = LevelPolicy.Edit()
        edit.maxMoves = .set(2)
        await #expect { try await app.setLevel("platinum", min: nil, max: nil, edit: edit) } throws: {
            "\($0)" == "level 'platinum' is not in the level table (bronze, silver, gold); give --min and --max to add it"
        }
        await #expect { try await app.setLevel("platinum", min: 100_000, max: nil) } throws: {
            "\($0)" == "level 'platinum' is new: give both --min and --max"
        }
        let added = try await app.setLevel("platinum", min: 100_000, max: 999_999, edit: edit)
        #expect(added.range?.previous == nil && added.range?.range.maxCounts == 999_999 && added.policy?.maxMoves == 2)
        let raised = try await app.setLevel("gold", min: nil, max: 100_000)
        #expect(raised.range?.previous?.maxCounts == 99_999 && raised.range?.range.minCounts == 10_000 && raised.policy == nil)
        #expect(try store.levels().map(\.name) == ["bronze", "silver", "gold", "platinum"])
    }

    @Test func levelsRecordedAsSeenAreKeptByTheQueue() async throws {
        try await app.recordLevelsSeen(["silver"])
        try await app.recordLevelsSeen(["gold"])
        #expect(try queue.control(.levelsSeen(adding: [])) == .names(["gold", "silver"]))
    }

    // MARK: - Contents

    @Test(arguments: [
        (Int64(0), "a.mp4", "gold", "bad_request"), (1, "../a.mp4", "gold", "invalid_filename"), (1, "/a.mp4", "gold", "invalid_filename"),
        (1, ".relocator/tmp/1-1.part", "gold", "invalid_filename"), (1, "a.mp4", "platinum", "unknown_level"), (1, "a.mp4", "gold", "ok"),
    ])
    func anOperatorsContentIsCheckedBeforeItIsWritten(cid: Int64, filename: String, level: String, expected: String) {
        switch App.checkedContent(cid: cid, filename: filename, level: level, levels: ["bronze", "silver", "gold"]) {
        case .success(let content): #expect(expected == "ok" && content == Content(cid: cid, filename: filename, level: level))
        case .failure(let error): #expect(error.code == expected, "\(error)")
        }
    }

    @Test func anUnknownLevelIsNamedWithTheTablesLevelsOrHowToFillAnEmptyTable() {
        #expect(App.unknownLevel("platinum", in: ["bronze", "gold"]).message == "level 'platinum' is not in the level table (bronze, gold)")
        #expect(App.unknownLevel("gold", in: []).message.contains("the level table is empty: run `relocator levels --seed-default`"))
    }

    @Test func addingAContentSaysWhetherItWasAddedChangedOrLeftAlone() async throws {
        #expect(try await app.putContent(cid: 1, filename: "a.mp4", level: "bronze") == .added)
        #expect(try await app.putContent(cid: 1, filename: "a.mp4", level: "bronze") == .unchanged)
        let change = try await app.putContent(cid: 1, filename: "b.mp4", level: "gold")
        #expect(change == .changed(from: Content(cid: 1, filename: "a.mp4", level: "bronze")))
        #expect(try store.content(cid: 1)?.filename == "b.mp4")
        await #expect { try await app.putContent(cid: 2, filename: "c.mp4", level: "platinum") } throws: { Self.code($0) == "unknown_level" }
        // Two contents never share a file: the store refuses, naming the owner.
        await #expect { try await app.putContent(cid: 2, filename: "b.mp4", level: "gold") } throws: {
            "\($0)".contains("filename 'b.mp4' already belongs to cid 1")
        }
        #expect(try store.content(cid: 2) == nil)
    }

    /// An operator's change of a content's level is a commit: ordered among the moves by a
    /// generation, with a relocation row naming who made it, and refused while a job is in flight.
    @Test func anOperatorsChangeOfLevelIsACommitAndWaitsForAJobInFlight() async throws {
        #expect(try await app.putContent(cid: 1, filename: "a.mp4", level: "bronze") == .added)
        #expect(try await app.putContent(cid: 1, filename: "a.mp4", level: "gold") == .changed(from: Content(cid: 1, filename: "a.mp4", level: "bronze")))
        let history = try store.history(cid: 1)
        #expect(history.count == 1 && history[0].from == "bronze" && history[0].to == "gold" && history[0].worker == "relocator contents add")
        // A count read before the change is told to read the content again.
        #expect(queue.hash(queue.keys.shard(of: 1).movedAt)["1"] != nil)
        #expect(queue.submit(cid: 1, count: 5, filename: "a.mp4", dbLevel: "gold", target: "bronze", readAt: SubmitRequest.freshRead).outcome == .created)
        await #expect { try await app.putContent(cid: 1, filename: "b.mp4", level: "silver") } throws: {
            Self.code($0) == "job_in_flight" && "\($0)".contains("cid 1 has a job in flight")
        }
        await #expect { try await app.putContents([Content(cid: 2, filename: "c.mp4", level: "gold"), Content(cid: 1, filename: "a.mp4", level: "silver")],
                                                  by: "test") } throws: { Self.code($0) == "job_in_flight" }
        #expect(try store.content(cid: 1)?.level == "gold" && store.content(cid: 1)?.filename == "a.mp4" && store.content(cid: 2) == nil)
        #expect(try store.history(cid: 1).count == 1)
        // A new filename waits for the job too: its move would take the file of the name it had.
        await #expect { try await app.putContents([Content(cid: 1, filename: "z.mp4", level: "gold")], by: "test") } throws: {
            Self.code($0) == "job_in_flight" && "\($0)".contains("its filename is not changed under its move")
        }
        #expect(try store.content(cid: 1)?.filename == "a.mp4")
        // A new content, or a new filename of one without a job on the same level, is no commit.
        #expect(try await app.putContents([Content(cid: 2, filename: "c.mp4", level: "gold")], by: "test") == 1)
        #expect(try await app.putContents([Content(cid: 2, filename: "z.mp4", level: "gold")], by: "test") == 1)
        #expect(try store.content(cid: 2)?.filename == "z.mp4" && store.history(cid: 1).count == 1 && store.history(cid: 2).isEmpty)
        #expect(queue.hash(queue.keys.shard(of: 2).movedAt)["2"] != nil, "a count read before the new name reads it again")
    }

    @Test func contentsAreListedByLevelAndAnUnknownLevelIsRefused() async throws {
        #expect(try await app.putContents([Content(cid: 3, filename: "c", level: "gold"), Content(cid: 1, filename: "a", level: "gold"),
                                           Content(cid: 2, filename: "b", level: "bronze")], by: "test") == 3)
        #expect(try await app.contents(limit: 10, offset: 0, level: "gold").map(\.cid) == [1, 3])
        #expect(try await app.contents(limit: 1, offset: 1, level: nil).map(\.cid) == [2])
        await #expect { try await app.contents(limit: 10, offset: 0, level: "platinum") } throws: {
            "\($0)" == "level 'platinum' is not in the level table (bronze, silver, gold)"
        }
    }

    // MARK: - Committed moves

    @Test func committedMovesComeAPageAtATimeWithTheFilenamesOfTheContentsThatRemain() async throws {
        _ = try store.put([Content(cid: 1, filename: "a.mp4", level: "bronze"), Content(cid: 2, filename: "b.mp4", level: "bronze")])
        for (gen, cid) in [(1, Int64(1)), (2, 2), (3, 1)] {
            try store.commit([CommitEntry(jobID: "\(cid):\(gen)", cid: cid, from: "bronze", to: "gold", bytes: 1, checksum: "", worker: "w1",
                                          attempts: 1, gen: Int64(gen))])
        }
        _ = try store.remove(cid: 2)
        let none = try await app.relocationRows(cid: nil, before: nil, limit: 0)
        #expect(none.rows.isEmpty && none.total == 0 && none.next == nil)
        let first = try await app.relocationRows(cid: nil, before: nil, limit: 2)
        #expect(first.rows.map(\.jobID) == ["1:3", "2:2"] && first.total == 3)
        #expect(first.filenames == [1: "a.mp4"], "a removed content's moves stay, without a filename")
        let next = try #require(first.next)
        let second = try await app.relocationRows(cid: nil, before: next, limit: 2)
        #expect(second.rows.map(\.jobID) == ["1:1"] && second.next == nil)
        #expect(try await app.relocationRows(cid: 2, before: nil, limit: 5).rows.map(\.jobID) == ["2:2"])
    }

    // MARK: - Dead letters

    /// A job of `cid` that failed for good.
    func deadJob(_ cid: Int64) throws {
        queue.submit(cid: cid, count: 20000, filename: "f\(cid).mp4", dbLevel: "bronze", target: "gold")
        guard case .delivery(let delivery) = try queue.next(NextRequest(worker: "w1", levels: ["gold"], rotation: 0, wait: .zero)) else {
            throw AppError.noJob(cid)
        }
        _ = try queue.complete(delivery, .failed(.sourceMissing, message: "source_missing: gone", permanent: true, delay: .zero, maxAttempts: 5))
    }

    @Test func aSelectionOfDeadLettersNamingACidWithoutOneChangesNothing() async throws {
        try deadJob(1)
        try deadJob(2)
        #expect(try await app.deadLetters(cids: nil, action: "replayed").count == 2)
        #expect(try await app.deadLetters(cids: [2], action: "replayed").compactMap(\.job?.cid) == [2])
        await #expect { try await app.deadLetters(cids: [2, 99, 100, 99], action: "purged") } throws: {
            Self.code($0) == "no_dead_job" && "\($0)" == "no dead job for cid 99, 100; nothing purged"
        }
        #expect(queue.job(1)?.status == .dead && queue.job(2)?.status == .dead)
        let replayed = try await app.dead(.replay, cids: [1], by: "test")
        #expect(replayed.map(\.outcome) == [.replayed] && queue.job(1)?.status == .queued)
    }

    // MARK: - Removing a content

    /// Two level directories of a test's own, removed after it.
    final class Levels {
        let root: String
        let directories: LevelDirectories

        init() throws {
            let root = FileManager.default.temporaryDirectory.appendingPathComponent("relocator-app-\(UUID().uuidString)").path
            for level in ["bronze", "silver", "gold"] {
                try FileManager.default.createDirectory(atPath: "\(root)/\(level)", withIntermediateDirectories: true)
            }
            self.root = root
            directories = LevelDirectories(["bronze", "silver", "gold"].map { ($0, "\(root)/\($0)") })
        }

        deinit { try? FileManager.default.removeItem(atPath: root) }
    }

    @Test func aContentIsRemovedOnlyOnceNoJobAndNoLevelHoldsIt() async throws {
        let levels = try Levels()
        _ = try store.put([Content(cid: 1, filename: "a.mp4", level: "bronze")])
        func remove(_ directories: LevelDirectories? = nil) async throws -> App.RemovedContent {
            try await app.removeContent(cid: 1, directories: directories ?? levels.directories, setting: "RELOCATOR_LEVELS", holder: "test")
        }
        await #expect { try await app.removeContent(cid: 9, directories: levels.directories, setting: "x", holder: "test") } throws: {
            Self.code($0) == "unknown_cid"
        }
        await #expect { try await remove(LevelDirectories([("gold", levels.root + "/gold")])) } throws: {
            "\($0)" == "cannot check every level for cid 1's file: bronze, silver have no directory in RELOCATOR_LEVELS; nothing removed"
        }
        // A job in flight holds the content; a dead one may have left a copy at its target.
        queue.submit(cid: 1, count: 20000, filename: "a.mp4", dbLevel: "bronze", target: "gold")
        await #expect { try await remove() } throws: { Self.code($0) == "job_in_flight" }
        guard case .delivery(let delivery) = try queue.next(NextRequest(worker: "w1", levels: ["gold"], rotation: 0, wait: .zero)) else {
            throw AppError.noJob(1)
        }
        _ = try queue.complete(delivery, .failed(.sourceMissing, message: "source_missing: gone", permanent: true, delay: .zero, maxAttempts: 5))
        await #expect { try await remove() } throws: { Self.code($0) == "job_not_committed" && "\($0)".contains("relocator dlq purge --cid 1") }
        _ = try queue.control(.dead(.purge, cids: [1]))
        // A file at its path on any level keeps the row.
        FileManager.default.createFile(atPath: levels.root + "/silver/a.mp4", contents: Data("x".utf8))
        await #expect { try await remove() } throws: {
            Self.code($0) == "file_present" && "\($0)".contains("cid 1's file is still on silver (\(levels.root)/silver/a.mp4)")
        }
        #expect(try store.content(cid: 1) != nil)
        // Each refusal let the content go (else the next attempt would find it held).
        try FileManager.default.removeItem(atPath: levels.root + "/silver/a.mp4")
        try store.commit([CommitEntry(jobID: "1:9", cid: 1, from: "silver", to: "bronze", bytes: 1, checksum: "", worker: "test", attempts: 0, gen: 9)])
        _ = try queue.control(.hit(cid: 1, hits: 3, halfLife: .seconds(86400)))
        #expect(queue.hash(queue.keys.shard(of: 1).hits)["1"] != nil)
        // A level in use before whose directory has no `.relocator/` is a disk not mounted: its
        // empty mountpoint cannot vouch that the file is gone.
        _ = try queue.control(.levelsSeen(adding: ["silver"]))
        await #expect { try await remove() } throws: {
            Self.code($0) == "level_unavailable" && "\($0)".contains("cannot tell whether silver holds a.mp4") && "\($0)".hasSuffix("nothing removed")
        }
        #expect(try store.content(cid: 1) != nil)
        try FileManager.default.createDirectory(atPath: levels.root + "/silver/.relocator", withIntermediateDirectories: true)
        let removed = try await remove()
        #expect(removed.history == 1 && removed.content.cid == 1 && removed.content.filename == "a.mp4")
        #expect(try store.content(cid: 1) == nil && store.history(cid: 1).count == 1)
        #expect(queue.hash(queue.keys.shard(of: 1).hits)["1"] == nil, "its hits are forgotten")
        #expect(try queue.control(.lease(cid: 1, token: "other", ttl: .seconds(1))) == .flag(true), "and the content is not held")
    }
}
