import Foundation
import JobQueue
import RelocatorCore
import Testing
import TestSupport

/// A worker's transfer address and levels live in its heartbeat, on a real Redis: they are what
/// other workers find, and they go when the heartbeat is not renewed.
@Suite struct TransferAdvertTests {
    @Test func theAdvertisedLevelsAndAddressGoWithTheHeartbeat() throws {
        let q = try QueueFixture()
        defer { q.cleanUp() }
        let session = RedisJobQueue(queue: q.queue, redis: q.redis)
        let edge = Heartbeat(id: "edge", kind: .worker, levels: ["gold"], directories: ["gold": "/ssd"], transfer: "10.0.0.1:7400")
        let archive = Heartbeat(id: "archive", kind: .worker, levels: ["silver"], directories: ["silver": "/hdd"], transfer: "[fd00::2]:7400")
        let shared = Heartbeat(id: "shared", kind: .worker, levels: ["gold"], directories: ["gold": "/nfs/gold"])
        try q.queue.heartbeat(worker: "edge", info: edge.fields, ttl: .seconds(60), on: q.redis)
        try q.queue.heartbeat(worker: "archive", info: archive.fields, ttl: .seconds(60), on: q.redis)
        try q.queue.heartbeat(worker: "shared", info: shared.fields, ttl: .seconds(60), on: q.redis)
        // As stored: the address in its own field, nothing for a worker that serves no transfers.
        #expect(try q.redis.send("HGET", q.queue.keys.control.heartbeat("edge"), WorkerField.transfer.rawValue).string == "10.0.0.1:7400")
        #expect(try q.redis.send("HEXISTS", q.queue.keys.control.heartbeat("shared"), WorkerField.transfer.rawValue).int == 0)
        let beats = try session.heartbeats()
        #expect(beats.first { $0.id == "archive" }?.transfer == "[fd00::2]:7400")
        #expect(beats.first { $0.id == "shared" }?.transfer == nil)
        let gold = TransferPeer.serving("gold", among: beats, excluding: "archive")
        #expect(gold.map(\.worker) == ["edge"] && gold.first?.address == TransferAddress(host: "10.0.0.1", port: 7400))
        #expect(TransferPeer.serving("silver", among: beats, excluding: "edge").map(\.address) == [TransferAddress(host: "fd00::2", port: 7400)])
        // Not renewed: the heartbeat expires, and with it the offer of gold's files. (Its short
        // life starts only now: on a loaded machine one of 300 ms had ended before it was read.)
        try q.queue.heartbeat(worker: "edge", info: edge.fields, ttl: .milliseconds(300), on: q.redis)
        let deadline = ContinuousClock.now + .seconds(10)
        while try !TransferPeer.serving("gold", among: session.heartbeats(), excluding: "archive").isEmpty {
            try #require(ContinuousClock.now < deadline, "the expired heartbeat still advertises gold")
            usleep(20_000)
        }
        #expect(try session.heartbeats().map(\.id).sorted() == ["archive", "shared"])
    }
}
