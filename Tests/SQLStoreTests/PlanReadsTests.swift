import RelocatorCore
import SQLStore
import Testing
import TestSupport

/// What `relocator plan` reads of many contents at once, on every dialect.
@Suite struct PlanReadsTests {
    func withStore(_ backend: Backend, _ body: (ContentStore) throws -> Void) throws {
        let test = try TestDatabase(backend)
        defer { test.drop() }
        let db = try test.open()
        defer { db.close() }
        try Migrator(database: db, migrations: test.migrations()).migrate()
        try body(ContentStore(database: db))
    }

    /// The bytes of each content's newest move, as `history(cid:).last` gives them one by one —
    /// also past a chunk of 1,000 cids, for cids given twice, and nothing for a content never moved.
    @Test(arguments: Backend.allCases)
    func theLastMovedBytesOfManyContentsAreThoseOfTheirNewestMove(backend: Backend) throws {
        try withStore(backend) { store in
            try store.put((1...1203).map { Content(cid: Int64($0), filename: "f\($0)", level: "bronze") })
            // cid 1 moved three times (bytes 101, 102, 103: the entries' bytes are 100 + gen), the
            // others once, except 1203, never.
            try store.commit([CommitTests.entry(cid: 1, gen: 1, to: "silver")])
            try store.commit([CommitTests.entry(cid: 1, gen: 3, from: "silver", to: "gold")])
            try store.commit([CommitTests.entry(cid: 1, gen: 2, from: "gold", to: "silver")])
            try store.commit((2...1202).map { CommitTests.entry(cid: Int64($0), gen: Int64($0 % 7 + 1), to: "silver") })

            let cids: [Int64] = Array(1...1203) + [1, 2]
            let bytes = try store.lastMovedBytes(cids: cids)
            // The newest row is the last one written (gen 2), whatever the gens say.
            #expect(bytes[1] == 102)
            #expect(bytes[1203] == nil)
            #expect(bytes.count == 1202)
            for cid in [Int64(1), 2, 999, 1000, 1001, 1202] {
                #expect(bytes[cid] == (try store.history(cid: cid).last?.bytes), "cid \(cid)")
            }
            #expect(try store.lastMovedBytes(cids: []).isEmpty)
        }
    }

    @Test(arguments: Backend.allCases)
    func contentsAreCountedByLevel(backend: Backend) throws {
        try withStore(backend) { store in
            #expect(try store.countsByLevel().isEmpty)
            try store.put((1...30).map { Content(cid: Int64($0), filename: "f\($0)", level: $0 % 3 == 0 ? "gold" : "bronze") })
            #expect(try store.countsByLevel() == ["gold": 10, "bronze": 20])
        }
    }
}
