import Foundation
import RelocatorCore
import SQLStore
import Testing
import TestSupport

/// `ContentStore.commit`: relocation rows always, a level only from a job newer than any recorded.
@Suite struct CommitTests {
    func withStore(_ backend: Backend, _ body: (ContentStore, TestDatabase) throws -> Void) throws {
        let test = try TestDatabase(backend)
        defer { test.drop() }
        let db = try test.open()
        defer { db.close() }
        try Migrator(database: db, migrations: test.migrations()).migrate()
        try body(ContentStore(database: db), test)
    }

    static func entry(cid: Int64, gen: Int64, from: String = "bronze", to: String) -> CommitEntry {
        CommitEntry(jobID: "\(cid):\(gen)", cid: cid, from: from, to: to, bytes: 100 + gen, checksum: "sum-\(gen)", worker: "w", attempts: 0)
    }

    @Test func anEntryTakesItsGenFromTheJobOrTheJobID() {
        #expect(Self.entry(cid: 7, gen: 12, to: "gold").gen == 12)
        #expect(CommitEntry(jobID: "7:12", cid: 7, from: "a", to: "b", bytes: 0, checksum: "", worker: "", attempts: 0, gen: 15).gen == 15)
        let job = Job(cid: 7, count: 5, filename: "f", dbLevel: "bronze", target: "gold", status: .done, gen: 9, enqueuedAt: 0, updatedAt: 0)
        #expect(CommitEntry(job).gen == 9)
        #expect(CommitEntry(job).jobID == "7:9")
    }

    @Test(arguments: Backend.allCases)
    func aLateCommitOfAnOlderJobNeverRollsTheLevelBack(backend: Backend) throws {
        try withStore(backend) { store, _ in
            try store.put(Content(cid: 1, filename: "a.mp4", level: "bronze"))
            try store.commit([Self.entry(cid: 1, gen: 5, to: "gold")])
            #expect(try store.content(cid: 1)?.level == "gold")
            let stamped = try store.content(cid: 1)?.updateTime
            // gen 3 was moved before gen 5 but its commit arrives after: recorded, level untouched.
            try store.commit([Self.entry(cid: 1, gen: 3, to: "silver")])
            #expect(try store.content(cid: 1)?.level == "gold")
            #expect(try store.content(cid: 1)?.updateTime == stamped)
            #expect(try store.history(cid: 1).map(\.jobID) == ["1:5", "1:3"])
            #expect(try store.history(cid: 1).map(\.gen) == [5, 3])
            // A newer one still moves it on.
            try store.commit([Self.entry(cid: 1, gen: 6, from: "gold", to: "silver")])
            #expect(try store.content(cid: 1)?.level == "silver")
            // The same batch delivered again changes nothing.
            try store.commit([Self.entry(cid: 1, gen: 5, to: "gold")])
            #expect(try store.content(cid: 1)?.level == "silver")
            #expect(try store.history(cid: 1).count == 3)
        }
    }

    @Test(arguments: Backend.allCases)
    func withinOneBatchTheHighestGenSetsTheLevelWhateverTheOrder(backend: Backend) throws {
        try withStore(backend) { store, _ in
            try store.put([Content(cid: 1, filename: "a", level: "bronze"), Content(cid: 2, filename: "b", level: "bronze")])
            try store.commit([Self.entry(cid: 1, gen: 9, to: "gold"), Self.entry(cid: 2, gen: 1, to: "silver"), Self.entry(cid: 1, gen: 4, to: "silver")])
            #expect(try store.content(cid: 1)?.level == "gold")
            #expect(try store.content(cid: 2)?.level == "silver")
            #expect(try store.relocations(cid: 1, limit: 10).count == 2)
        }
    }

    @Test(arguments: Backend.allCases)
    func rowsRecordedBeforeGensExistedDoNotBlockANewCommit(backend: Backend) throws {
        try withStore(backend) { store, _ in
            try store.put(Content(cid: 1, filename: "a", level: "bronze"))
            try store.database.execute("""
                INSERT INTO relocations (job_id, cid, from_level, to_level, bytes, checksum, worker, attempts)
                VALUES (\("1:40"), \(1), \("silver"), \("bronze"), \(1), \("x"), \("old"), \(0))
                """)
            #expect(try store.history(cid: 1).first?.gen == nil)
            try store.commit([Self.entry(cid: 1, gen: 1, to: "gold")])
            #expect(try store.content(cid: 1)?.level == "gold")
        }
    }

    @Test(arguments: Backend.allCases)
    func aCommitForAContentWithoutARowStillRecordsTheMove(backend: Backend) throws {
        try withStore(backend) { store, _ in
            try store.commit([Self.entry(cid: 42, gen: 1, to: "gold")])
            #expect(try store.content(cid: 42) == nil)
            #expect(try store.relocations(cid: 42, limit: 5).map(\.jobID) == ["42:1"])
        }
    }

    // MARK: - Two committers at once

    /// A blocker holds the content's row; the newer job's commit starts and waits, then the older
    /// one's; the blocker lets go. Whatever order the two then run in, the newer level stands.
    /// Without the row lock taken first, the older commit's update decided on a snapshot older
    /// than the newer commit and wrote its level over it.
    @Test(arguments: [Backend.postgres, .mysql])
    func twoCommitsOfOneContentAtOnceLeaveTheNewerLevel(backend: Backend) throws {
        let test = try TestDatabase(backend)
        defer { test.drop() }
        let connections = try (0..<4).map { _ in try test.open() }
        defer { connections.forEach { $0.close() } }
        let (blocker, newer, older, monitor) = (connections[0], connections[1], connections[2], connections[3])
        try Migrator(database: monitor, migrations: test.migrations()).migrate()
        try ContentStore(database: monitor).put(Content(cid: 1, filename: "a.mp4", level: "bronze"))

        let sessions = try [newer, older].map { db -> Int64 in
            let sql: SQLQuery = backend == .postgres ? "SELECT pg_backend_pid() AS id" : "SELECT CONNECTION_ID() AS id"
            return try db.query(sql)[0].decode("id")
        }
        func waiting() throws -> Int {
            let ids = sessions.map(String.init).joined(separator: ", ")
            let sql = backend == .postgres
                ? "SELECT COUNT(*) AS n FROM pg_stat_activity WHERE pid IN (\(ids)) AND wait_event_type = 'Lock'"
                : "SELECT COUNT(*) AS n FROM information_schema.INNODB_TRX WHERE trx_mysql_thread_id IN (\(ids)) AND trx_state = 'LOCK WAIT'"
            return try monitor.query(SQLQuery(unsafeSQL: sql))[0].decode("n")
        }

        try blocker.executeScript("BEGIN")
        _ = try blocker.query("SELECT cid FROM contents WHERE cid = \(1) FOR UPDATE")
        var commits: [Background] = []
        var released = false
        defer {
            // Whatever failed, the waiting commits end before their connections close.
            if !released { Self.cleanup { try blocker.executeScript("ROLLBACK") } }
            for commit in commits { Self.cleanup { try commit.wait() } }
        }
        commits.append(Background(newer) { try ContentStore(database: $0).commit([Self.entry(cid: 1, gen: 4, to: "gold")]) })
        try Self.waitUntil("the newer commit waits for the row") { try waiting() == 1 }
        commits.append(Background(older) { try ContentStore(database: $0).commit([Self.entry(cid: 1, gen: 3, to: "silver")]) })
        try Self.waitUntil("both commits wait for the row") { try waiting() == 2 }
        try blocker.executeScript("ROLLBACK")
        released = true
        let results = commits.map { commit in Result { try commit.wait() } }
        commits = []
        for result in results { try result.get() }

        let store = ContentStore(database: monitor)
        #expect(try store.content(cid: 1)?.level == "gold")
        #expect(try Set(store.history(cid: 1).map(\.jobID)) == ["1:4", "1:3"])
    }

    /// Work on a connection, on a thread of its own (so no shared pool can hold it back).
    final class Background: @unchecked Sendable {
        private let done = DispatchSemaphore(value: 0)
        private var failure: (any Error)?

        init(_ database: any SQLDatabase, _ body: @escaping (any SQLDatabase) throws -> Void) {
            nonisolated(unsafe) let database = database
            nonisolated(unsafe) let body = body
            BlockingExecutor.thread(named: "test-commit") { [self] in
                do { try body(database) } catch { failure = error }
                done.signal()
            }
        }

        func wait() throws {
            done.wait()
            if let failure { throw failure }
        }
    }

    static func waitUntil(_ what: String, _ condition: () throws -> Bool) throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while try !condition() {
            guard ContinuousClock.now < deadline else { throw WaitFailed(what: what) }
            // Not faster: MariaDB refreshes INNODB_TRX only when it was not read for 100 ms.
            usleep(200_000)
        }
    }

    struct WaitFailed: Error, CustomStringConvertible {
        let what: String
        var description: String { "gave up waiting until \(what)" }
    }

    static func cleanup(_ body: () throws -> Void) {
        do { try body() } catch { Issue.record("cleanup failed: \(error)") }
    }
}
