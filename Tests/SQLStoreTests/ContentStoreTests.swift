import Foundation
import RelocatorCore
import SQLStore
import Testing
import TestSupport

/// Contents, filenames, reads for the commands, and times as RFC 3339.
@Suite struct ContentStoreTests {
    func withStore(_ backend: Backend, _ body: (ContentStore) throws -> Void) throws {
        let test = try TestDatabase(backend)
        defer { test.drop() }
        let db = try test.open()
        defer { db.close() }
        try Migrator(database: db, migrations: test.migrations()).migrate()
        try body(ContentStore(database: db))
    }

    static var rfc3339: Regex<(Substring, Substring?)> { /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/ }

    @Test(arguments: Backend.allCases)
    func aFilenameThatBelongsToAnotherContentIsRefused(backend: Backend) throws {
        try withStore(backend) { store in
            try store.put(Content(cid: 12, filename: "x.mp4", level: "bronze"))
            let refused = #expect(throws: SQLError.self) { try store.put(Content(cid: 13, filename: "x.mp4", level: "gold")) }
            #expect(refused?.code == .duplicateFilename)
            #expect(refused?.message == "filename 'x.mp4' already belongs to cid 12")
            #expect(try store.content(cid: 13) == nil)
            // The owner may put its own row again, and change it.
            try store.put(Content(cid: 12, filename: "x.mp4", level: "silver"))
            try store.put(Content(cid: 12, filename: "y.mp4", level: "silver"))
            try store.put(Content(cid: 13, filename: "x.mp4", level: "gold"))
            #expect(try store.contents().map(\.filename) == ["y.mp4", "x.mp4"])
        }
    }

    /// Every content is read a page a statement, each from where the last ended: no statement
    /// returns more than a page, however large the table.
    @Test(arguments: Backend.allCases)
    func everyContentIsReadAPageAStatement(backend: Backend) throws {
        let test = try TestDatabase(backend)
        defer { test.drop() }
        let db = try test.open()
        defer { db.close() }
        try Migrator(database: db, migrations: test.migrations()).migrate()
        let cids = (1...30).map { Int64($0 * 3) }
        #expect(try ContentStore(database: db).put(cids.map { Content(cid: $0, filename: "f\($0)", level: "bronze") }) == 30)
        let counting = RowCounting(db)
        #expect(try ContentStore(database: counting).contents(page: 7).map(\.cid) == cids)
        #expect(counting.rows == [7, 7, 7, 7, 2])
    }

    @Test(arguments: Backend.allCases)
    func aBulkImportIsAllOrNothingAndNamesTheDuplicate(backend: Backend) throws {
        try withStore(backend) { store in
            try store.put(Content(cid: 12, filename: "taken.mp4", level: "bronze"))
            let rows = (1...1100).map { Content(cid: Int64($0 + 1000), filename: "f\($0).mp4", level: "bronze") }

            let inDatabase = #expect(throws: SQLError.self) { try store.put(rows + [Content(cid: 5000, filename: "taken.mp4", level: "gold")]) }
            #expect(inDatabase?.code == .duplicateFilename)
            #expect(inDatabase?.message == "filename 'taken.mp4' already belongs to cid 12")

            let inImport = #expect(throws: SQLError.self) { try store.put(rows + [Content(cid: 5000, filename: "f7.mp4", level: "gold")]) }
            #expect(inImport?.code == .duplicateFilename)
            #expect(inImport?.message == "filename 'f7.mp4' is given to both cid 1007 and cid 5000")
            #expect(try store.contents().count == 1)

            // A name freed by the same import may be reused by it; a cid given twice keeps its last row.
            #expect(try store.put(rows + [Content(cid: 12, filename: "renamed.mp4", level: "bronze"),
                                          Content(cid: 5000, filename: "taken.mp4", level: "gold"),
                                          Content(cid: 5001, filename: "first.mp4", level: "gold"),
                                          Content(cid: 5001, filename: "last.mp4", level: "silver")]) == 1104)
            #expect(try store.contents().count == 1103)
            // Read in pages, from where the last one ended: the same rows in the same order,
            // whether the last page is full or not.
            let whole = try store.contents().map(\.cid)
            #expect(whole == whole.sorted())
            #expect(try store.contents(page: 7).map(\.cid) == whole)
            #expect(try store.contents(page: 1103).map(\.cid) == whole)
            #expect(try store.contents(page: 1).count == 1103)
            #expect(try store.content(cid: 5000)?.filename == "taken.mp4")
            #expect(try store.content(cid: 5001) == Content(cid: 5001, filename: "last.mp4", level: "silver"))
        }
    }

    /// A name that an existing content gives up, a new content of a lower cid takes in the same
    /// import; two contents swap their names; every row is written as given on every backend (on
    /// MariaDB, an upsert of the new cid used to update the old owner's row by its filename, and
    /// the new cid was never written).
    @Test(arguments: Backend.allCases)
    func anImportMayHandANameFromOneContentToAnotherOrSwapTwo(backend: Backend) throws {
        try withStore(backend) { store in
            func rows() throws -> [String] { try store.contents().map { "\($0.cid) \($0.filename) \($0.level)" } }
            try store.put([Content(cid: 20, filename: "X.bin", level: "gold")])
            #expect(try store.put([Content(cid: 10, filename: "X.bin", level: "bronze"), Content(cid: 20, filename: "Y.bin", level: "bronze")]) == 2)
            #expect(try rows() == ["10 X.bin bronze", "20 Y.bin gold"])
            #expect(try store.put([Content(cid: 10, filename: "Y.bin", level: "gold"), Content(cid: 20, filename: "X.bin", level: "gold")]) == 2)
            #expect(try rows() == ["10 Y.bin bronze", "20 X.bin gold"])
            // A chain of three and a new content, in one import.
            try store.put([Content(cid: 30, filename: "Z.bin", level: "silver")])
            try store.put([Content(cid: 10, filename: "X.bin", level: "gold"), Content(cid: 20, filename: "Z.bin", level: "gold"),
                           Content(cid: 30, filename: "W.bin", level: "gold"), Content(cid: 5, filename: "Y.bin", level: "silver")])
            #expect(try rows() == ["5 Y.bin silver", "10 X.bin bronze", "20 Z.bin gold", "30 W.bin silver"])
            // A name that stays with its content is refused to another, and nothing is written.
            let kept = #expect(throws: SQLError.self) {
                try store.put([Content(cid: 1, filename: "W.bin", level: "gold"), Content(cid: 10, filename: "V.bin", level: "gold")])
            }
            #expect(kept?.code == .duplicateFilename)
            #expect(kept?.message == "filename 'W.bin' already belongs to cid 30")
            #expect(try rows() == ["5 Y.bin silver", "10 X.bin bronze", "20 Z.bin gold", "30 W.bin silver"])
        }
    }

    /// `café` with `é` (C3 A9) and with `e` and a combining accent (65 CC 81) are one string to
    /// Swift but two names to the kernel and to the index: two contents may have them.
    @Test(arguments: Backend.allCases)
    func twoSpellingsOfOneCharacterAreTwoFilenames(backend: Backend) throws {
        try withStore(backend) { store in
            let composed = "caf\u{E9}.bin", decomposed = "cafe\u{301}.bin"
            #expect(try store.put([Content(cid: 51, filename: composed, level: "gold"), Content(cid: 52, filename: decomposed, level: "gold")]) == 2)
            #expect(try store.contents().map { Array($0.filename.utf8) } == [Array(composed.utf8), Array(decomposed.utf8)])
            // Changing one into the other is a change of name, and the other's name is taken.
            let taken = #expect(throws: SQLError.self) { try store.put([Content(cid: 51, filename: decomposed, level: "gold")]) }
            #expect(taken?.code == .duplicateFilename)
            try store.put([Content(cid: 52, filename: "other.bin", level: "gold"), Content(cid: 51, filename: decomposed, level: "gold")])
            #expect(try store.contents().map { Array($0.filename.utf8) } == [Array(decomposed.utf8), Array("other.bin".utf8)])
        }
    }

    @Test(arguments: Backend.allCases)
    func contentsArePagedByCidAndFilteredByLevel(backend: Backend) throws {
        try withStore(backend) { store in
            try store.put((1...30).map { Content(cid: Int64($0), filename: "f\($0)", level: $0 % 3 == 0 ? "gold" : "bronze") })
            #expect(try store.contents(limit: 5).map(\.cid) == [1, 2, 3, 4, 5])
            #expect(try store.contents(limit: 5, offset: 27).map(\.cid) == [28, 29, 30])
            #expect(try store.contents(limit: 4, offset: 1, level: "gold").map(\.cid) == [6, 9, 12, 15])
            #expect(try store.contents(limit: 100, level: "silver").isEmpty)
        }
    }

    /// A put of an existing content changes its filename but never its level: a level read before
    /// may be older than a move committed since (only a commit changes a level).
    @Test(arguments: Backend.allCases)
    func aPutOfAnExistingContentKeepsTheLevelAMoveGaveIt(backend: Backend) throws {
        try withStore(backend) { store in
            try store.put([Content(cid: 1, filename: "a", level: "bronze")])
            try store.commit([CommitTests.entry(cid: 1, gen: 1, to: "silver")])
            try store.put([Content(cid: 1, filename: "a2", level: "bronze"), Content(cid: 2, filename: "b", level: "gold")])
            let kept = try store.content(cid: 1)
            #expect(kept?.filename == "a2" && kept?.level == "silver", "\(String(describing: kept))")
            #expect(try store.content(cid: 2)?.level == "gold")
        }
    }

    @Test(arguments: Backend.allCases)
    func relocationsOfOneContentAndItsHistoryComeInOrder(backend: Backend) throws {
        try withStore(backend) { store in
            try store.put([Content(cid: 1, filename: "a", level: "bronze"), Content(cid: 2, filename: "b", level: "bronze")])
            try store.commit([CommitTests.entry(cid: 1, gen: 1, to: "silver")])
            try store.commit([CommitTests.entry(cid: 2, gen: 1, to: "gold")])
            try store.commit([CommitTests.entry(cid: 1, gen: 2, from: "silver", to: "gold")])
            #expect(try store.relocations(limit: 10).map(\.jobID) == ["1:2", "2:1", "1:1"])
            #expect(try store.relocations(cid: 1, limit: 1).map(\.jobID) == ["1:2"])
            let history = try store.history(cid: 1)
            #expect(history.map(\.jobID) == ["1:1", "1:2"])
            #expect(history.map { "\($0.from)→\($0.to)" } == ["bronze→silver", "silver→gold"])
            #expect(history.map(\.bytes) == [101, 102])
            #expect(history.map(\.checksum) == ["sum-1", "sum-2"])
            for relocation in history {
                #expect(relocation.movedAt.wholeMatch(of: Self.rfc3339) != nil, "\(relocation.movedAt)")
            }
        }
    }

    /// Whatever the dialect stores and whatever zone a session uses, a time reads as UTC: the
    /// same instant the database's own clock gives, within the test's run.
    @Test(arguments: Backend.allCases)
    func timesReadAsRFC3339InUTC(backend: Backend) throws {
        try withStore(backend) { store in
            let db = store.database
            if backend == .postgres { try db.executeScript("SET TimeZone = 'Asia/Kolkata'") }
            let before = Date().addingTimeInterval(-1)
            try store.put(Content(cid: 1, filename: "a", level: "bronze"))
            try store.commit([CommitTests.entry(cid: 1, gen: 1, to: "gold")])
            let after = Date().addingTimeInterval(1)
            let content = try #require(try store.content(cid: 1))
            let moved = try #require(try store.relocations(cid: 1, limit: 1).first)
            for time in [try #require(content.updateTime), moved.movedAt] {
                #expect(time.wholeMatch(of: Self.rfc3339) != nil, "\(time)")
                let parsed = try #require(Self.parse(time), "\(time)")
                #expect(parsed >= before && parsed <= after, "\(time) is not between \(before) and \(after)")
            }
            // Stored without a fraction and without a zone (the original system's rows): UTC.
            try db.execute("UPDATE contents SET update_time = \("2026-11-27 21:47:15") WHERE cid = \(1)")
            if backend == .postgres {
                // Written in the session's zone, read back in UTC.
                #expect(try store.content(cid: 1)?.updateTime == "2026-11-27T16:17:15Z")
            } else {
                #expect(try store.content(cid: 1)?.updateTime == "2026-11-27T21:47:15Z")
            }
        }
    }

    static func parse(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = text.contains(".") ? [.withInternetDateTime, .withFractionalSeconds] : [.withInternetDateTime]
        // ISO8601DateFormatter reads at most three fraction digits.
        var trimmed = text
        if let dot = text.firstIndex(of: "."), let z = text.firstIndex(of: "Z") {
            trimmed = String(text[..<dot]) + "." + String((String(text[text.index(after: dot)..<z]) + "000").prefix(3)) + "Z"
        }
        return formatter.date(from: trimmed)
    }

    // MARK: - Pure

    @Test func timesFromEveryDialectBecomeRFC3339UTC() {
        let cases: [(String, String?)] = [
            ("2026-11-27 21:47:15.123456+00", "2026-11-27T21:47:15.123456Z"),   // PostgreSQL, UTC session
            ("2026-11-28 03:17:15.5+05:30", "2026-11-27T21:47:15.5Z"),          // PostgreSQL, Kolkata
            ("2026-11-27 13:47:15-08", "2026-11-27T21:47:15Z"),
            ("1900-01-01 00:05:43+00:05:43", "1900-01-01T00:00:00Z"),            // a local mean time
            ("2026-12-31 23:30:00-01", "2027-01-01T00:30:00Z"),                  // across a year
            ("2024-03-01 00:30:00+01:00", "2024-02-29T23:30:00Z"),               // back into a leap day
            ("2026-11-27 21:47:15.123456", "2026-11-27T21:47:15.123456Z"),       // MariaDB DATETIME(6)
            ("2026-11-27 21:47:15.123", "2026-11-27T21:47:15.123Z"),             // SQLite strftime
            ("2026-11-27T21:47:15Z", "2026-11-27T21:47:15Z"),
            ("2026-11-27T21:47:15+0100", "2026-11-27T20:47:15Z"),
            ("2026-02-30 00:00:00", nil), ("2026-11-27", nil), ("yesterday", nil), ("2026-11-27 21:47:15.", nil),
            ("2026-11-27 21:47:15 junk", nil), ("2026-11-27 25:00:00", nil),
        ]
        for (input, expected) in cases {
            #expect(SQLTimestamp.rfc3339(input) == expected, "\(input)")
        }
    }

    @Test func contentsAndRelocationsEncodeWithSnakeCaseKeys() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let content = Content(cid: 7, filename: "g.mp4", level: "silver", updateTime: "2026-11-27T21:47:15Z")
        #expect(String(decoding: try encoder.encode(content), as: UTF8.self)
            == #"{"cid":7,"filename":"g.mp4","level":"silver","update_time":"2026-11-27T21:47:15Z"}"#)
        let relocation = Relocation(jobID: "7:3", cid: 7, from: "bronze", to: "silver", bytes: 10, checksum: "ab", worker: "w1",
                                    attempts: 1, movedAt: "2026-11-27T21:47:15.5Z", gen: 3)
        #expect(String(decoding: try encoder.encode(relocation), as: UTF8.self)
            == #"{"attempts":1,"bytes":10,"checksum":"ab","cid":7,"from":"bronze","gen":3,"job_id":"7:3","moved_at":"2026-11-27T21:47:15.5Z","to":"silver","worker":"w1"}"#)
        #expect(try JSONDecoder().decode(Relocation.self, from: encoder.encode(relocation)) == relocation)
    }
}

/// A database that records how many rows each of its queries returned.
private final class RowCounting: SQLDatabase {
    let base: any SQLDatabase
    private(set) var rows: [Int] = []

    init(_ base: any SQLDatabase) { self.base = base }

    var dialect: SQLDialect { base.dialect }
    var location: String { base.location }
    func execute(_ query: SQLQuery) throws -> Int { try base.execute(query) }
    func query(_ query: SQLQuery) throws -> [SQLRow] {
        let found = try base.query(query)
        rows.append(found.count)
        return found
    }
    func executeScript(_ sql: String) throws { try base.executeScript(sql) }
    func close() {}
}
