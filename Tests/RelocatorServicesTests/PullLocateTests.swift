import Foundation
import RelocatorCore
@testable import RelocatorServices
import RelocatorTesting
import Testing
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
        let (listening, port) = try TransferSocketTests.listener()
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
}
