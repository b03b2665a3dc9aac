import Foundation
import RelocatorCore
@testable import RelocatorServices
import RelocatorTesting
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// How a pull locates its source among the workers its heartbeats name, read at most
/// `heartbeatsKept` before: an answer that is not final from the heartbeats read before is asked
/// again of the workers serving the level now.
@Suite struct PullLocateTests {
    /// The archive's heartbeat: it serves bronze at `port`, over TLS or not.
    static func archive(port: Int, tls: Bool) -> Heartbeat {
        Heartbeat(id: "archive", kind: .worker, levels: ["bronze"], directories: ["bronze": "/srv/bronze"],
                  transfer: "127.0.0.1:\(port)", transferTLS: tls)
    }

    /// The heartbeats read before said the archive speaks TLS (this worker has no CA: a refusal,
    /// sent nothing); it restarted without a certificate since. The refusal is not counted: the
    /// heartbeats are read again and the archive asked in plain HTTP, which locates the source.
    @Test func aRefusalOverTLSFromTheHeartbeatsReadBeforeIsAskedAgainOfTheLiveOnes() throws {
        let (listening, port) = try loopbackSocket()
        defer { close(listening) }
        let queue = MemoryQueue()
        let h = WorkerHarness(queue: queue, transfer: TransferAddress(host: "127.0.0.1", port: 0))
        _ = try queue.maintain(MaintenanceRequest(beat: Self.archive(port: port, tls: true), ttl: .seconds(60)))
        var (peers, cached) = try h.worker.transferPeers("bronze", queue)
        #expect(!cached && peers.map(\.tls) == [true])
        (peers, cached) = try h.worker.transferPeers("bronze", queue)
        #expect(cached, "read within heartbeatsKept: the heartbeats read before")

        // The archive restarts in plain HTTP.
        _ = try queue.maintain(MaintenanceRequest(beat: Self.archive(port: port, tls: false), ttl: .seconds(60)))
        let served = TransferSocketTests.serveOnce(listening, answer: Array(
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nRelocator-Size: 5\r\nRelocator-Version: v7\r\nConnection: close\r\n\r\n".utf8))
        let job = Job(cid: 7, count: 1, filename: "seven.bin", dbLevel: "bronze", target: "gold", status: .moving, gen: 1, enqueuedAt: 0, updatedAt: 0)
        let source = try h.worker.locate(job, &peers, cached: cached, queue, [])
        #expect(source.size == 5 && source.version == "v7")
        #expect(peers.map(\.tls) == [false], "the heartbeats read now")
        while !served.isFinished { usleep(1000) }

        // From heartbeats read now, a refusal is final.
        _ = try queue.maintain(MaintenanceRequest(beat: Self.archive(port: port, tls: true), ttl: .seconds(60)))
        (peers, cached) = try h.worker.transferPeers("bronze", queue, fresh: true)
        #expect {
            try h.worker.locate(job, &peers, cached: cached, queue, [])
        } throws: { error in
            (error as? TransferClient.TLSRefused)?.description.contains("no --transfer-tls-ca is given here") == true
        }
    }

    /// The heartbeats read before name the archive, which answers that it has no such file; read
    /// again, they name no worker serving the level (its heartbeat expired: a restart, a partition
    /// from Redis). Nobody said the file is missing: the move waits (unreachable), it is not a
    /// `source_missing` failure, which would dead-letter the job.
    @Test func noWorkerServingTheLevelWhenAskedAgainIsAWaitNotAMissingSource() throws {
        let (listening, port) = try loopbackSocket()
        defer { close(listening) }
        let queue = MemoryQueue()
        let h = WorkerHarness(queue: queue, transfer: TransferAddress(host: "127.0.0.1", port: 0))
        _ = try queue.maintain(MaintenanceRequest(beat: Self.archive(port: port, tls: false), ttl: .seconds(60)))
        var (peers, _) = try h.worker.transferPeers("bronze", queue)
        #expect(peers.map(\.worker) == ["archive"])
        queue.advance(.seconds(120))   // its heartbeat expires
        // (The answer to a `HEAD`: the refusal in its header, no body.)
        let served = TransferSocketTests.serveOnce(listening, answer: Array(
            "HTTP/1.1 404 Not Found\r\n\(TransferProtocol.refusalHeader): \(TransferProtocol.Refusal.sourceMissing.rawValue)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8))
        let job = Job(cid: 7, count: 1, filename: "seven.bin", dbLevel: "bronze", target: "gold", status: .moving, gen: 1, enqueuedAt: 0, updatedAt: 0)
        // As the heartbeats read before (cached), so that a missing source is asked again.
        #expect {
            try h.worker.locate(job, &peers, cached: true, queue, [])
        } throws: { error in
            (error as? TransferClient.Unreachable)?.description.contains("no live worker serves level 'bronze'") == true
        }
        #expect(peers.isEmpty, "the heartbeats read again")
        while !served.isFinished { usleep(1000) }
    }

    /// One worker serving the level is refused over TLS (it wants TLS, and no CA is given here),
    /// another cannot be reached (a partition): the second may have the file and be reached as it
    /// should, so the move waits, counting nothing; the refusal is said beside.
    @Test func aRefusalOverTLSBesideAnUnreachableWorkerIsAWait() throws {
        let (refusing, refusingPort) = try loopbackSocket()
        defer { close(refusing) }
        let queue = MemoryQueue()
        let h = WorkerHarness(queue: queue, transfer: TransferAddress(host: "127.0.0.1", port: 0))
        _ = try queue.maintain(MaintenanceRequest(beat: Self.archive(port: refusingPort, tls: true), ttl: .seconds(6 * 3600)))
        let closedPort = try freeLoopbackPort()   // nobody listens there: the connection is refused
        _ = try queue.maintain(MaintenanceRequest(beat: Heartbeat(id: "mirror", kind: .worker, levels: ["bronze"], directories: ["bronze": "/srv/bronze"],
                                                                  transfer: "127.0.0.1:\(closedPort)"),
                                                  ttl: .seconds(6 * 3600)))
        let (peers, _) = try h.worker.transferPeers("bronze", queue, fresh: true)
        #expect(Set(peers.map(\.worker)) == ["archive", "mirror"])
        let job = Job(cid: 7, count: 1, filename: "seven.bin", dbLevel: "bronze", target: "gold", status: .moving, gen: 1, enqueuedAt: 0, updatedAt: 0)
        #expect {
            try h.worker.locate(job, peers, [])
        } throws: { error in
            guard let waiting = error as? TransferClient.Unreachable else { return false }
            return waiting.description.contains("mirror") && waiting.description.contains("no --transfer-tls-ca is given here")
        }
        #expect(noConnectionWaits(on: refusing), "nothing was sent to the worker that wants TLS")
    }
}
