import Foundation
import RelocatorCore
import SQLStore
import Synchronization
import Testing
import TestSupport

/// A session stalled inside a transaction (a committer stopped by SIGSTOP mid-batch) holds its row
/// locks: another session's wait on them ends in an error within `SessionLimits.lockWaitSeconds`
/// (the committer tries again, and a stop ends it) instead of for ever, and the server is told to
/// end a session idle in a transaction after `SessionLimits.idleInTransactionSeconds`.
@Suite struct SessionLimitsTests {
    @Test(arguments: [Backend.postgres, .mysql])
    func aWaitOnTheRowLocksOfAStalledTransactionEnds(backend: Backend) throws {
        let test = try TestDatabase(backend)
        defer { test.drop() }
        let stalled = try test.open()
        defer { stalled.close() }
        try stalled.executeScript("CREATE TABLE held (n INTEGER PRIMARY KEY, v INTEGER)")
        try stalled.executeScript("INSERT INTO held (n, v) VALUES (1, 0)")
        try stalled.executeScript("BEGIN")
        try stalled.executeScript("UPDATE held SET v = 1 WHERE n = 1")

        let outcome = Mutex<Result<Int, any Error>?>(nil)
        let ended = DispatchSemaphore(value: 0)
        let started = ContinuousClock.now
        Thread.detachNewThread {
            let result = Result {
                let waiting = try test.open()
                defer { waiting.close() }
                return try waiting.execute(SQLQuery(unsafeSQL: "UPDATE held SET v = 2 WHERE n = 1"))
            }
            outcome.withLock { $0 = result }
            ended.signal()
        }
        let endedInTime = ended.wait(timeout: .now() + .seconds(SessionLimits.lockWaitSeconds * 3)) == .success
        if !endedInTime {
            // Unblock the waiter before failing (the stalled transaction ends).
            try stalled.executeScript("ROLLBACK")
            ended.wait()
        }
        #expect(endedInTime, "the wait on the stalled transaction's lock did not end within \(SessionLimits.lockWaitSeconds * 3) s")
        let result = try #require(outcome.withLock { $0 })
        #expect(throws: SQLError.self) { try result.get() }
        #expect(ContinuousClock.now - started >= .seconds(SessionLimits.lockWaitSeconds - 1), "it waited its limit first")

        let idle = backend == .postgres ? "SHOW idle_in_transaction_session_timeout" : "SELECT @@idle_transaction_timeout"
        let limit = try stalled.query(SQLQuery(unsafeSQL: idle)).first?.values.first
        #expect(limit == (backend == .postgres ? .text("1min") : .int(Int64(SessionLimits.idleInTransactionSeconds))), "\(String(describing: limit))")
    }
}
