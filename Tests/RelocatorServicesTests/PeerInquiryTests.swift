import Foundation
import RelocatorCore
@testable import RelocatorServices
import RelocatorTesting
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Reconcile's questions to other hosts' workers (`PeerInquiry`).
@Suite struct PeerInquiryTests {
    /// A worker that could not be reached is not asked again for 30 s: the next content's question
    /// is answered from what the first learnt (a partitioned peer whose heartbeat still lives would
    /// cost a connect or read timeout per content), with the reason.
    @Test func aWorkerThatCouldNotBeReachedIsNotAskedAgainForTheNextContent() throws {
        let (listening, port) = try loopbackSocket()
        defer { close(listening) }
        let queue = MemoryQueue()
        _ = try queue.maintain(MaintenanceRequest(beat: Heartbeat(id: "archive", kind: .worker, levels: ["bronze"],
                                                                  directories: ["bronze": "/srv/bronze"], transfer: "127.0.0.1:\(port)"),
                                                  ttl: .seconds(6 * 3600)))
        // The one connection taken is closed before an answer: the archive cannot be reached.
        let accepted = Thread {
            let connection = accept(listening, nil, nil)
            if connection >= 0 { close(connection) }
        }
        accepted.start()
        let inquiry = PeerInquiry(session: queue, signingKey: nil, ttl: .seconds(600))
        let first = try inquiry.look(cid: 1, filename: "one.bin", levels: ["bronze"])
        #expect(first.looked.isEmpty)
        let reason = try #require(first.unanswered["bronze"])
        // (Closed with the request unread: a reset, or a close before an answer.)
        #expect(reason.hasPrefix("worker archive at 127.0.0.1:\(port): "), "\(reason)")
        while !accepted.isFinished { usleep(1000) }

        let second = try inquiry.look(cid: 2, filename: "two.bin", levels: ["bronze"])
        #expect(second.unanswered["bronze"] == reason, "the reason learnt by the first question")
        // Not asked: no connection waits on the listener.
        #expect(noConnectionWaits(on: listening), "the archive was asked again")
    }
}
