import Foundation
import RelocatorCore
import SQLStore
import Testing
import TestSupport

/// The relocations a page at a time and the last hour's moves from level to level, on each
/// database.
@Suite struct RelocationPagesTests {
    @Test(arguments: Backend.allCases)
    func pagesGoNewestFirstAndANewMoveNeitherShiftsNorRepeatsOne(backend: Backend) throws {
        try CommitTests().withStore(backend) { store, _ in
            try store.put((1...5).map { Content(cid: Int64($0), filename: "f\($0)", level: "bronze") })
            for gen in Int64(1)...5 { try store.commit([CommitTests.entry(cid: gen, gen: gen, to: "silver")]) }
            let first = try store.relocationsPage(cid: nil, before: nil, limit: 2)
            #expect(first.rows.map(\.cid) == [5, 4] && first.total == 5)
            let next = try #require(first.next)
            // A move committed meanwhile goes on the first page, not the next.
            try store.commit([CommitTests.entry(cid: 1, gen: 9, from: "silver", to: "gold")])
            let second = try store.relocationsPage(cid: nil, before: next, limit: 2)
            #expect(second.rows.map(\.cid) == [3, 2] && second.total == 6)
            let last = try store.relocationsPage(cid: nil, before: try #require(second.next), limit: 2)
            #expect(last.rows.map(\.cid) == [1] && last.next == nil)
            let one = try store.relocationsPage(cid: 1, before: nil, limit: 10)
            #expect(one.rows.map(\.jobID) == ["1:9", "1:1"] && one.total == 2 && one.next == nil)
        }
    }

    @Test(arguments: Backend.allCases)
    func theLastHoursMovesAreCountedFromLevelToLevel(backend: Backend) throws {
        try CommitTests().withStore(backend) { store, _ in
            try store.put((1...3).map { Content(cid: Int64($0), filename: "f\($0)", level: "bronze") })
            try store.commit([CommitTests.entry(cid: 1, gen: 1, to: "silver"), CommitTests.entry(cid: 2, gen: 2, to: "silver"),
                              CommitTests.entry(cid: 3, gen: 3, to: "gold")])
            let recent = try store.recentMoves(withinSeconds: 3600)
            #expect(recent.complete)
            #expect(recent.counts == [LevelMoves(from: "bronze", to: "gold", moves: 1, bytes: 103),
                                      LevelMoves(from: "bronze", to: "silver", moves: 2, bytes: 203)])
            // Only the newest rows are looked at: the answer says it may be incomplete.
            let bounded = try store.recentMoves(withinSeconds: 3600, newest: 2)
            #expect(!bounded.complete && bounded.counts.reduce(0) { $0 + $1.moves } == 2)
            // A move of two hours ago is not of the last hour (the database's own clock, as it
            // stamps the moves).
            let dialect = store.database.dialect
            #expect(try store.database.execute("UPDATE relocations SET moved_at = \(unsafeSQL: dialect.timeAgo(seconds: 7200)) WHERE cid = 3") == 1)
            #expect(try store.recentMoves(withinSeconds: 3600).counts == [LevelMoves(from: "bronze", to: "silver", moves: 2, bytes: 203)])
        }
    }
}
