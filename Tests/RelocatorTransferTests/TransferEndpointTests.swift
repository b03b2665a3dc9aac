import FileMover
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import RelocatorCore
import RelocatorTesting
@testable import RelocatorTransfer
import Synchronization
import Testing
import TestSupport

/// One test's transfer endpoint: a level `gold` on a real directory (with `.relocator/`), a
/// directory beside it that no request may reach, and the memory queue holding the jobs.
final class TransferFixture: @unchecked Sendable {
    let dir: TemporaryDirectory
    let queue = MemoryQueue()
    let levels: HeldLevels
    var gold: String { dir.path + "/gold" }
    var outside: String { dir.path + "/outside" }

    /// A tmpfs mounted for the fixture, when asked for (`onTmpfs`).
    let mount: TmpfsMount?
    /// The levels served through a FUSE passthrough that can stop answering (`throughFuse`).
    let fuses: [String: FuseLevel]

    /// `alsoHolding`: more levels this worker holds beside gold. `onTmpfs`: its directories on a
    /// tmpfs of its own (a served hash is taken only on a file system whose times are this host's).
    /// `throughFuse`: more levels, each a FUSE passthrough of a directory of the fixture's.
    init(alsoHolding more: [String] = [], onTmpfs: Bool = false, throughFuse: [String] = []) throws {
        let mount = onTmpfs ? try TmpfsMount() : nil
        self.mount = mount
        let dir = try TemporaryDirectory("relocator-transfer", under: mount?.path)
        self.dir = dir
        let base = dir.path
        var fuses: [String: FuseLevel] = [:]
        do {
            for path in [base + "/gold", base + "/outside"] + (more + throughFuse.map { $0 + "-disk" }).map({ base + "/" + $0 }) {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            }
            try Data("secret outside the level\n".utf8).write(to: URL(fileURLWithPath: base + "/outside/secret"))
            for level in throughFuse { fuses[level] = try FuseLevel(serving: base + "/" + level + "-disk") }
            self.fuses = fuses
            levels = try HeldLevels(LevelDirectories([("gold", base + "/gold")] + more.map { ($0, base + "/" + $0) }
                                                     + throughFuse.map { ($0, fuses[$0]!.path) }))
            for root in levels.roots.values { try root.initialise() }
        } catch {
            for fuse in fuses.values { fuse.remove() }
            dir.remove()
            mount?.remove()
            throw error
        }
    }

    func remove() {
        for fuse in fuses.values { fuse.remove() }
        dir.remove()
        mount?.remove()
    }

    /// A file of `bytes` bytes (a pattern no two offsets of a chunk share) at `name` in gold.
    @discardableResult
    func file(_ name: String, bytes: Int = 3 << 20) throws -> Data {
        let data = Data((0..<bytes).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 11) })
        let url = URL(fileURLWithPath: gold + "/" + name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: url)
        return data
    }

    /// The key the endpoint's workers share (none by default).
    var signingKey: TransferSigningKey?

    /// The secret each delivery recorded, by its job's cid and token.
    var secrets: [String: TransferSecret] = [:]

    /// A job moving `filename` from `level` to silver, claimed: its delivery, which recorded a
    /// secret of its own.
    func claim(_ cid: Int64, _ filename: String, from level: String = "gold") throws -> Delivery {
        _ = queue.submit(cid: cid, count: 20000, filename: filename, dbLevel: level, target: "silver")
        return try deliver(cid)
    }

    /// The next delivery of content `cid`'s job (the edge's), with its secret recorded.
    func deliver(_ cid: Int64, worker: String = "edge") throws -> Delivery {
        guard case .delivery(let delivery) = try queue.next(NextRequest(worker: worker, levels: ["silver"], rotation: 0, wait: .zero)) else {
            throw TestFailure("content \(cid)'s job was not delivered")
        }
        let secret = TransferSecret.random()
        guard try queue.record(delivery, .transferSecret(digest: secret.digest)) else { throw TestFailure("no secret recorded") }
        secrets["\(cid):\(delivery.token)"] = secret
        return delivery
    }

    /// `delivery`'s copy recorded published (`publishing`, then `published`), as its puller records
    /// it before it asks for the source's removal.
    func published(_ delivery: Delivery, _ checksum: Checksum, bytes: Int64, sourceVersion: String? = nil) throws {
        guard try queue.record(delivery, .publishing(checksum, bytes: bytes, sourceVersion: sourceVersion)),
              try queue.record(delivery, .published) else { throw TestFailure("content \(delivery.job.cid)'s copy was not recorded published") }
    }

    /// The headers of a request of `delivery`'s.
    func headers(_ delivery: Delivery, token: String? = nil, gen: String? = nil, secret: String? = nil, extra: HTTPFields = [:]) -> HTTPFields {
        var fields = extra
        fields[TransferHeader.delivery] = token ?? delivery.job.deliveryToken
        fields[TransferHeader.secret] = secret ?? secrets["\(delivery.job.cid):\(delivery.token)"]?.text ?? ""
        fields[TransferHeader.gen] = gen ?? "\(delivery.job.gen)"
        return fields
    }

    /// Requests to an endpoint on the memory queue (through `gateway`, when given).
    /// (`lookPatience`: an inquiry's wait for a level's disk.)
    func test(gateway: (any QueueGateway)? = nil, lookPatience: Duration = .seconds(2),
              _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let endpoint = TransferEndpoint(levels: levels, queue: gateway ?? MemoryQueueGateway(queue),
                                        logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }), signingKey: signingKey,
                                        lookPatience: lookPatience)
        try await Application(router: endpoint.router()).test(.router, body)
    }
}

/// The memory queue, counting the jobs its sessions read (`readJob`: a round trip to Redis each).
final class CountingGateway: QueueGateway, Sendable {
    let inner: MemoryQueueGateway
    private let counted = Mutex(0)

    init(_ inner: MemoryQueueGateway) {
        self.inner = inner
    }

    /// The jobs read so far.
    var reads: Int { counted.withLock { $0 } }

    func read() { counted.withLock { $0 += 1 } }

    func withSession<T: Sendable>(replicated: Bool, _ body: @escaping @Sendable (any JobQueueSession) throws -> T) async throws -> T {
        try await inner.withSession(replicated: replicated) { session in try body(CountingSession(inner: session, gateway: self)) }
    }

    func submit(_ request: SubmitRequest) async throws -> SubmitResult { try await inner.submit(request) }
    func identity() async -> String? { await inner.identity() }
    func problem() async -> String? { await inner.problem() }
    var address: String { inner.address }
    var shardCount: Int { inner.shardCount }
    func close() { inner.close() }
}

/// A session of `CountingGateway`'s.
final class CountingSession: QueueDecorator, @unchecked Sendable {
    let inner: any JobQueueSession
    let gateway: CountingGateway

    init(inner: any JobQueueSession, gateway: CountingGateway) {
        self.inner = inner
        self.gateway = gateway
    }

    func readJob(cid: Int64) throws -> Result<Job, Job.DecodingError>? {
        gateway.read()
        return try inner.readJob(cid: cid)
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension TestResponse {
    var bytes: Data { Data(body.readableBytesView) }
    /// The refusal's code, from its JSON body.
    var refusal: String? {
        (try? JSONSerialization.jsonObject(with: bytes) as? [String: Any])?["error"] as? String
    }
    var message: String {
        (try? JSONSerialization.jsonObject(with: bytes) as? [String: Any])?["message"] as? String ?? ""
    }
}

@Suite struct TransferEndpointTests {
    @Test func rangesOfTheSourceAreServedWithTheirChecksumTheSizeAndTheVersion() async throws {
        let f = try TransferFixture()
        defer { f.remove() }
        let data = try f.file("movies/a.mp4")
        let delivery = try f.claim(7, "movies/a.mp4")
        let fullSum = try TestFiles.xxh128(f.gold + "/movies/a.mp4")
        try await f.test { client in
            var received = Data()
            var version: String?
            var offset = 0
            while offset < data.count {
                var extra: HTTPFields = [.range: "bytes=\(offset)-\(offset + (1 << 20) - 1)"]
                if let version { extra[TransferHeader.version] = version }
                let answer = try await client.execute(uri: TransferProtocol.contentPath(7), method: .get, headers: f.headers(delivery, extra: extra))
                #expect(answer.status == .partialContent, "\(answer.message)")
                #expect(answer.headers[.contentRange] == "bytes \(offset)-\(offset + answer.bytes.count - 1)/\(data.count)")
                #expect(answer.headers[TransferHeader.size] == "\(data.count)")
                // Each range's checksum is the checksum of its bytes (xxhsum's, computed apart).
                let piece = f.dir.path + "/piece"
                try answer.bytes.write(to: URL(fileURLWithPath: piece))
                #expect(try answer.headers[TransferHeader.rangeChecksum] == "xxh128:" + TestFiles.xxh128(piece))
                #expect(version == nil || answer.headers[TransferHeader.version] == version)
                version = answer.headers[TransferHeader.version]
                received += answer.bytes
                offset += answer.bytes.count
            }
            #expect(received == data)
            try received.write(to: URL(fileURLWithPath: f.dir.path + "/whole"))
            #expect(try TestFiles.xxh128(f.dir.path + "/whole") == fullSum)
            // An open range ends at the end; a small file comes whole without Range.
            let tail = try await client.execute(uri: TransferProtocol.contentPath(7), method: .get,
                                                headers: f.headers(delivery, extra: [.range: "bytes=\(data.count - 10)-"]))
            #expect(tail.status == .partialContent && tail.bytes == data.suffix(10))
            let whole = try await client.execute(uri: TransferProtocol.contentPath(7), method: .get, headers: f.headers(delivery))
            #expect(whole.status == .ok && whole.bytes == data)
            // One answer holds at most maximumRange bytes, whatever the file's size.
            #expect(throws: TransferProtocol.RangeInvalid.self) { try TransferProtocol.range("bytes=0-\(TransferProtocol.maximumRange)", size: 1 << 40) }
            #expect(throws: TransferProtocol.RangeInvalid.self) { try TransferProtocol.range("bytes=5-", size: 1 << 40) }
            #expect(try TransferProtocol.range("bytes=5-", size: 10)! == (5, 5))
            #expect(try TransferProtocol.range("bytes=999999999999999999-", size: 10) == nil)
            let past = try await client.execute(uri: TransferProtocol.contentPath(7), method: .get,
                                                headers: f.headers(delivery, extra: [.range: "bytes=\(data.count)-"]))
            #expect(past.status == .rangeNotSatisfiable && past.refusal == "range_not_satisfiable" && past.headers[.contentRange] == "bytes */\(data.count)")
            for bad in ["bytes=5-1", "bytes=-5", "bytes=0-1,4-5", "items=0-1", "bytes=+1-2", "bytes=0-99999999999999999999"] {
                let refused = try await client.execute(uri: TransferProtocol.contentPath(7), method: .get, headers: f.headers(delivery, extra: [.range: bad]))
                #expect(refused.status == .badRequest && refused.refusal == "invalid_range", "\(bad): \(refused.status) \(refused.message)")
            }
        }
    }

    /// A long file served whole to one delivery, range after range in order: the endpoint keeps
    /// the hash it made as it read them, the file's own for the version served, for the removal
    /// (which then need not read the file again); ranges asked out of order leave none. Either
    /// way the removal removes the proven source.
    @Test func aFileServedWholeInOrderKeepsTheHashMadeAsItWasReadForItsRemoval() async throws {
        let f = try TransferFixture(onTmpfs: true)
        defer { f.remove() }
        for name in ["w.bin", "x.bin"] { try f.file(name, bytes: 3 << 20) }
        let sum = try Checksum(parsing: "xxh128:" + TestFiles.xxh128(f.gold + "/w.bin"))
        let version = try #require(try f.levels.roots["gold"]?.openForTransfer(Filename("w.bin"))?.version)
        for name in ["w.bin", "x.bin"] {
            let file = try #require(try f.levels.roots["gold"]?.openForTransfer(Filename(name)))
            try RedisProcesses.waitUntil("\(name) settles") { file.changedBefore(ServedDeliveries.settledFor) }
        }
        let endpoint = TransferEndpoint(levels: f.levels, queue: MemoryQueueGateway(f.queue),
                                        logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        let inOrder = try f.claim(60, "w.bin")
        let outOfOrder = try f.claim(61, "x.bin")
        func key(_ delivery: Delivery) throws -> String {
            let secret = try #require(f.secrets["\(delivery.job.cid):\(delivery.token)"])
            return TransferProtocol.transferKey(token: delivery.job.deliveryToken, digest: secret.digest)
        }
        let mib = 1 << 20
        try await Application(router: endpoint.router()).test(.router) { client in
            for (delivery, ranges) in [(inOrder, [(0, 65536), (65536, 2 * mib - 65536), (2 * mib, mib)]),
                                       (outOfOrder, [(0, 65536), (2 * mib, mib), (65536, 2 * mib - 65536)])] {
                for (offset, length) in ranges {
                    let got = try await client.execute(uri: TransferProtocol.contentPath(delivery.job.cid), method: .get,
                                                       headers: f.headers(delivery, extra: [.range: "bytes=\(offset)-\(offset + length - 1)"]))
                    #expect(got.status == .partialContent && got.bytes.count == length, "\(got.message)")
                }
            }
        }
        let kept = try #require(endpoint.served.level(cid: 60, key: try key(inOrder)))
        #expect(kept.level == "gold" && kept.checksum == ServedChecksum(version: version, checksum: sum))
        let none = try #require(endpoint.served.level(cid: 61, key: try key(outOfOrder)))
        #expect(none.level == "gold" && none.checksum == nil)

        // Served whole, then proven: removed.
        let third = try f.claim(62, "x.bin")
        let xsum = try Checksum(parsing: "xxh128:" + TestFiles.xxh128(f.gold + "/x.bin"))
        try f.published(third, xsum, bytes: 3 << 20)
        try await Application(router: endpoint.router()).test(.router) { client in
            for (offset, length) in [(0, 65536), (65536, 3 * mib - 65536)] {
                let got = try await client.execute(uri: TransferProtocol.contentPath(62), method: .get,
                                                   headers: f.headers(third, extra: [.range: "bytes=\(offset)-\(offset + length - 1)"]))
                #expect(got.status == .partialContent, "\(got.message)")
            }
            let removal = try await client.execute(uri: TransferProtocol.removePath(62), method: .post,
                                                   headers: f.headers(third, extra: [TransferHeader.checksum: xsum.description]))
            #expect(removal.status == .ok, "\(removal.message)")
            #expect(try JSONDecoder().decode(TransferEndpoint.Removal.self, from: removal.bytes) == TransferEndpoint.Removal(outcome: "removed", cid: 62, hash: "served"))
        }
        #expect(!FileManager.default.fileExists(atPath: f.gold + "/x.bin"))
    }

    /// A file that changed less than `settledFor` before its first range was served has no hash
    /// carried on (where times step by whole clock ticks, a write in the same tick would not
    /// change its version): its removal reads it.
    @Test func aFileChangedJustBeforeItWasServedIsReadAgainAtItsRemoval() async throws {
        let f = try TransferFixture()
        defer { f.remove() }
        try f.file("y.bin", bytes: 2 << 20)
        let sum = try Checksum(parsing: "xxh128:" + TestFiles.xxh128(f.gold + "/y.bin"))
        let endpoint = TransferEndpoint(levels: f.levels, queue: MemoryQueueGateway(f.queue),
                                        logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }), signingKey: nil,
                                        settledFor: .seconds(3600))
        let delivery = try f.claim(63, "y.bin")
        try f.published(delivery, sum, bytes: 2 << 20)
        try await Application(router: endpoint.router()).test(.router) { client in
            let got = try await client.execute(uri: TransferProtocol.contentPath(63), method: .get,
                                               headers: f.headers(delivery, extra: [.range: "bytes=0-\((2 << 20) - 1)"]))
            #expect(got.status == .partialContent, "\(got.message)")
            let removal = try await client.execute(uri: TransferProtocol.removePath(63), method: .post,
                                                   headers: f.headers(delivery, extra: [TransferHeader.checksum: sum.description]))
            #expect(removal.status == .ok, "\(removal.message)")
            #expect(try JSONDecoder().decode(TransferEndpoint.Removal.self, from: removal.bytes) == TransferEndpoint.Removal(outcome: "removed", cid: 63, hash: "read"))
        }
    }

    /// The whole hash is carried on only through ranges asked in order from the first byte, of one
    /// version, of a file long enough and settled, for the delivery that asks; one range read at
    /// a time (another asked meanwhile drops it).
    @Test func theWholeHashIsCarriedOnOnlyThroughRangesInOrderOfOneSettledVersion() throws {
        let size: Int64 = 2 << 20
        let half = size / 2
        let served = ServedDeliveries()
        served.remember(cid: 1, key: "k", level: "gold")
        #expect(served.wholeHash(cid: 1, key: "k", version: "v", offset: 0, size: size, settled: false) == nil, "changed just now")
        #expect(served.wholeHash(cid: 1, key: "k", version: "v", offset: 0, size: ServedDeliveries.wholeHashFrom - 1, settled: true) == nil,
                "too short to be worth it")
        #expect(served.wholeHash(cid: 1, key: "other", version: "v", offset: 0, size: size, settled: true) == nil, "another delivery's key")
        #expect(served.wholeHash(cid: 2, key: "k", version: "v", offset: 0, size: size, settled: true) == nil, "a content not served")

        // In order, whole: kept for the removal, once.
        let first = try #require(served.wholeHash(cid: 1, key: "k", version: "v", offset: 0, size: size, settled: true))
        served.hashed(cid: 1, key: "k", version: "v", from: 0, through: half, first)
        let second = try #require(served.wholeHash(cid: 1, key: "k", version: "v", offset: half, size: size, settled: true))
        #expect(second === first)
        served.hashed(cid: 1, key: "k", version: "v", from: half, through: size, second)
        #expect(served.level(cid: 1, key: "k")?.checksum == ServedChecksum(version: "v", checksum: first.checksum()))
        #expect(served.level(cid: 1, key: "k") == nil, "forgotten once asked")

        // Each of these leaves no hash for the removal.
        func ends(_ steps: (ServedDeliveries) throws -> Void) throws -> ServedChecksum? {
            let served = ServedDeliveries()
            served.remember(cid: 1, key: "k", level: "gold")
            try steps(served)
            return try #require(served.level(cid: 1, key: "k")).checksum
        }
        // Not to the end.
        let ended1 = try ends { served in
            let hash = try #require(served.wholeHash(cid: 1, key: "k", version: "v", offset: 0, size: size, settled: true))
            served.hashed(cid: 1, key: "k", version: "v", from: 0, through: half, hash)
        }
        #expect(ended1 == nil)
        // A range skipped, then the rest.
        let ended2 = try ends { served in
            let hash = try #require(served.wholeHash(cid: 1, key: "k", version: "v", offset: 0, size: size, settled: true))
            served.hashed(cid: 1, key: "k", version: "v", from: 0, through: 1000, hash)
            #expect(served.wholeHash(cid: 1, key: "k", version: "v", offset: half, size: size, settled: true) == nil)
            #expect(served.wholeHash(cid: 1, key: "k", version: "v", offset: 1000, size: size, settled: true) == nil, "dropped")
        }
        #expect(ended2 == nil)
        // Another version in the middle.
        let ended3 = try ends { served in
            let hash = try #require(served.wholeHash(cid: 1, key: "k", version: "v", offset: 0, size: size, settled: true))
            served.hashed(cid: 1, key: "k", version: "v", from: 0, through: half, hash)
            #expect(served.wholeHash(cid: 1, key: "k", version: "w", offset: half, size: size, settled: true) == nil)
        }
        #expect(ended3 == nil)
        // A range asked while another is read into the hash (a second connection of the delivery).
        let ended4 = try ends { served in
            let hash = try #require(served.wholeHash(cid: 1, key: "k", version: "v", offset: 0, size: size, settled: true))
            served.hashed(cid: 1, key: "k", version: "v", from: 0, through: half, hash)
            let reading = try #require(served.wholeHash(cid: 1, key: "k", version: "v", offset: half, size: size, settled: true))
            #expect(served.wholeHash(cid: 1, key: "k", version: "v", offset: half, size: size, settled: true) == nil, "being read into")
            served.hashed(cid: 1, key: "k", version: "v", from: half, through: size, reading)
        }
        #expect(ended4 == nil)
        // The wall clock stepped back an hour while it was served (a write after it could now get
        // the version's change time): read again at the removal, and no range carries it on.
        var wall = timespec(), monotonic = timespec()
        clock_gettime(CLOCK_REALTIME, &wall)
        clock_gettime(CLOCK_MONOTONIC, &monotonic)
        let leadBefore = (Int64(wall.tv_sec) - Int64(monotonic.tv_sec) + 3600) * 1_000_000_000 + Int64(wall.tv_nsec) - Int64(monotonic.tv_nsec)
        let stepped = WholeFileHash(clockLead: leadBefore)
        #expect(!stepped.clockHeld && WholeFileHash().clockHeld)
        let steppedHalfWay = try ends { served in
            _ = try #require(served.wholeHash(cid: 1, key: "k", version: "v", offset: 0, size: size, settled: true))
            served.hashed(cid: 1, key: "k", version: "v", from: 0, through: half, stepped)
            #expect(served.wholeHash(cid: 1, key: "k", version: "v", offset: half, size: size, settled: true) == nil, "not carried on")
        }
        #expect(steppedHalfWay == nil)
        let steppedWhole = try ends { served in
            _ = try #require(served.wholeHash(cid: 1, key: "k", version: "v", offset: 0, size: size, settled: true))
            served.hashed(cid: 1, key: "k", version: "v", from: 0, through: size, stepped)
        }
        #expect(steppedWhole == nil)
        // At the most hashes held, a new one drops the one begun first (pulls that stopped leave theirs).
        let crowded = ServedDeliveries()
        for cid in 1...Int64(ServedDeliveries.mostWholeHashes) {
            crowded.remember(cid: cid, key: "k", level: "gold")
            let hash = try #require(crowded.wholeHash(cid: cid, key: "k", version: "v", offset: 0, size: size, settled: true))
            crowded.hashed(cid: cid, key: "k", version: "v", from: 0, through: size, hash)
        }
        crowded.remember(cid: 1000, key: "k", level: "gold")
        let newest = try #require(crowded.wholeHash(cid: 1000, key: "k", version: "v", offset: 0, size: size, settled: true))
        crowded.hashed(cid: 1000, key: "k", version: "v", from: 0, through: size, newest)
        #expect(crowded.level(cid: 1000, key: "k")?.checksum != nil)
        let dropped = try #require(crowded.level(cid: 1, key: "k"))
        #expect(dropped.checksum == nil, "the one begun first is dropped")
        #expect(crowded.level(cid: 2, key: "k")?.checksum != nil, "the others are kept")
        // A read that failed never hands its hash back.
        let ended5 = try ends { served in
            _ = try #require(served.wholeHash(cid: 1, key: "k", version: "v", offset: 0, size: size, settled: true))
        }
        #expect(ended5 == nil)
    }

    @Test func aSourceWrittenToDuringATransferIsRefusedAsAnotherVersion() async throws {
        let f = try TransferFixture()
        defer { f.remove() }
        try f.file("a", bytes: 4096)
        let delivery = try f.claim(8, "a")
        try await f.test { client in
            let first = try await client.execute(uri: TransferProtocol.contentPath(8), method: .get,
                                                 headers: f.headers(delivery, extra: [.range: "bytes=0-1023"]))
            let version = try #require(first.headers[TransferHeader.version])
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: f.gold + "/a"))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data([1, 2, 3]))
            try handle.close()
            var extra: HTTPFields = [.range: "bytes=1024-2047"]
            extra[TransferHeader.version] = version
            let second = try await client.execute(uri: TransferProtocol.contentPath(8), method: .get, headers: f.headers(delivery, extra: extra))
            #expect(second.status == .preconditionFailed && second.refusal == "version_changed", "\(second.message)")
            #expect(second.bytes.count < 1024)
        }
    }

    @Test func onlyTheJobsCurrentDeliveryIsServed() async throws {
        let f = try TransferFixture()
        defer { f.remove() }
        try f.file("a", bytes: 4096)
        let delivery = try f.claim(9, "a")
        try await f.test { client in
            var none = f.headers(delivery)
            none[TransferHeader.delivery] = nil
            let cases: [(HTTPFields, HTTPResponse.Status, String)] = [
                (none, .unauthorized, "missing_credential"),
                (f.headers(delivery, token: delivery.job.deliveryToken + "0"), .forbidden, "wrong_credential"),
                (f.headers(delivery, token: "x"), .forbidden, "wrong_credential"),
                (f.headers(delivery, gen: "\(delivery.job.gen + 1)"), .conflict, "stale_delivery"),
                (f.headers(delivery, gen: "-1"), .badRequest, "invalid_gen"),
                (f.headers(delivery, gen: "99999999999999999999"), .badRequest, "invalid_gen"),
            ]
            for (headers, status, code) in cases {
                let refused = try await client.execute(uri: TransferProtocol.contentPath(9), method: .get, headers: headers)
                #expect(refused.status == status && refused.refusal == code, "\(code): \(refused.status) \(refused.message)")
                #expect(refused.headers[.contentType] == "application/json")
            }
        }
    }

    /// The delivery token is a counter anyone can guess: without the secret the delivery recorded,
    /// nothing is served or removed. A secret an earlier delivery recorded is not the current one's.
    @Test func nothingIsServedOrRemovedWithoutTheLiveDeliverysSecret() async throws {
        let f = try TransferFixture()
        defer { f.remove() }
        try f.file("a", bytes: 4096)
        let first = try f.claim(9, "a")
        let sum = try Checksum(parsing: "xxh128:" + TestFiles.xxh128(f.gold + "/a"))
        try await f.test { client in
            var none = f.headers(first)
            none[TransferHeader.secret] = nil
            let cases: [(HTTPFields, HTTPResponse.Status, String)] = [
                (none, .unauthorized, "missing_credential"),
                (f.headers(first, secret: "guessed"), .forbidden, "wrong_credential"),
                (f.headers(first, secret: TransferSecret.random().text), .forbidden, "wrong_credential"),
                (f.headers(first, secret: String(repeating: "a", count: 100_000)), .forbidden, "wrong_credential"),
            ]
            for (headers, status, code) in cases {
                for (method, path) in [(HTTPRequest.Method.get, TransferProtocol.contentPath(9)), (.head, TransferProtocol.contentPath(9))] {
                    let refused = try await client.execute(uri: path, method: method, headers: headers)
                    #expect(refused.status == status && (method == .head || refused.refusal == code), "\(method) \(code): \(refused.status) \(refused.message)")
                    #expect(refused.headers[TransferHeader.refusal] == code)
                }
            }
            let served = try await client.execute(uri: TransferProtocol.contentPath(9), method: .get, headers: f.headers(first))
            #expect(served.status == .ok && served.bytes.count == 4096)
        }
        // The first delivery is reaped; the next one claims the job and records its own secret.
        #expect(try f.queue.release(worker: "edge", fence: true) == 1)
        let second = try f.deliver(9, worker: "edge2")
        try f.published(second, sum, bytes: 4096)
        try await f.test { client in
            let oldSecret = f.secrets["9:\(first.token)"]!.text
            for headers in [f.headers(second, secret: oldSecret), f.headers(first)] {
                let stale = try await client.execute(uri: TransferProtocol.contentPath(9), method: .get, headers: headers)
                #expect(stale.status == .forbidden && stale.refusal == "wrong_credential", "\(stale.status) \(stale.message)")
                var extra = headers
                extra[TransferHeader.checksum] = sum.description
                let removal = try await client.execute(uri: TransferProtocol.removePath(9), method: .post, headers: extra)
                #expect(removal.status == .forbidden && removal.refusal == "wrong_credential")
                // The secret appears in no answer.
                #expect(!String(decoding: removal.bytes, as: UTF8.self).contains(oldSecret))
            }
            #expect(FileManager.default.fileExists(atPath: f.gold + "/a"))
            let served = try await client.execute(uri: TransferProtocol.contentPath(9), method: .get, headers: f.headers(second))
            #expect(served.status == .ok && served.bytes.count == 4096)
        }
        #expect(try f.queue.jobs(cids: [9])[9]?.transferKey?.contains(f.secrets["9:\(second.token)"]!.text) == false, "only its digest is stored")
    }

    /// With a key the workers share, every request must carry its signature over what it asks:
    /// none, one under another key, or one of another range or generation is refused.
    @Test func withASharedKeyEveryRequestMustBeSignedOverWhatItAsks() async throws {
        let f = try TransferFixture()
        defer { f.remove() }
        let data = try f.file("a", bytes: 4096)
        let delivery = try f.claim(30, "a")
        let key = try TransferSigningKey(bytes: Array("a secret every worker shares\n".utf8))
        let other = try TransferSigningKey(bytes: Array("a secret of another deployment".utf8))
        #expect(throws: TransferKeyError.self) { try TransferSigningKey(bytes: Array("too short\n".utf8)) }
        f.signingKey = key
        let path = TransferProtocol.contentPath(30), gen = "\(delivery.job.gen)"
        try await f.test { client in
            func ask(_ signature: String?, range: String = "bytes=0-99") async throws -> TestResponse {
                var headers = f.headers(delivery, extra: [.range: range])
                if let signature { headers[TransferHeader.signature] = signature }
                return try await client.execute(uri: path, method: .get, headers: headers)
            }
            let unsigned = try await ask(nil)
            #expect(unsigned.status == .unauthorized && unsigned.refusal == "missing_credential", "\(unsigned.message)")
            let cases = [
                other.sign(method: "GET", path: path, cid: "30", gen: gen, range: "bytes=0-99"),
                key.sign(method: "GET", path: path, cid: "30", gen: gen, range: "bytes=0-4095"),
                key.sign(method: "GET", path: path, cid: "30", gen: "\(delivery.job.gen + 1)", range: "bytes=0-99"),
                key.sign(method: "HEAD", path: path, cid: "30", gen: gen, range: "bytes=0-99"),
                String(repeating: "0", count: 64),
            ]
            for signature in cases {
                let refused = try await ask(signature)
                #expect(refused.status == .forbidden && refused.refusal == "wrong_signature", "\(refused.message)")
            }
            let signed = try await ask(key.sign(method: "GET", path: path, cid: "30", gen: gen, range: "bytes=0-99"))
            #expect(signed.status == .partialContent && signed.bytes == data.prefix(100), "\(signed.message)")
        }
    }

    /// A refusal names nothing of the job (its generation, its status) to a caller that is not its
    /// delivery; a move whose target this worker holds is its own, never served or removed for
    /// another host, even with the right token.
    @Test func aLocalMoveIsNotServedAndARefusalNamesNothingOfTheJob() async throws {
        let f = try TransferFixture(alsoHolding: ["silver"])
        defer { f.remove() }
        try f.file("a", bytes: 4096)
        let delivery = try f.claim(9, "a")
        try await f.test { client in
            let local = try await client.execute(uri: TransferProtocol.contentPath(9), method: .get, headers: f.headers(delivery))
            #expect(local.status == .notFound && local.refusal == "not_served", "\(local.status) \(local.message)")
            let removal = try await client.execute(uri: TransferProtocol.removePath(9), method: .post,
                                                   headers: f.headers(delivery, extra: [TransferHeader.checksum: "xxh128:" + String(repeating: "0", count: 32)]))
            #expect(removal.status == .notFound && removal.refusal == "not_served", "\(removal.status) \(removal.message)")
            let stale = try await client.execute(uri: TransferProtocol.contentPath(9), method: .get,
                                                 headers: f.headers(delivery, gen: "\(delivery.job.gen + 1)"))
            #expect(stale.refusal == "stale_delivery" && !stale.message.contains("\(delivery.job.gen)") && !stale.message.contains("moving"),
                    "\(stale.message)")
        }
        #expect(FileManager.default.fileExists(atPath: f.gold + "/a"))
    }

    @Test func noRequestReachesAFileOutsideTheLevelOrAnotherContentsFile() async throws {
        let f = try TransferFixture()
        defer { f.remove() }
        try f.file("a", bytes: 4096)
        try FileManager.default.createDirectory(atPath: f.gold + "/dir", withIntermediateDirectories: true)
        symlink(f.outside, f.gold + "/linked")
        symlink(f.outside + "/secret", f.gold + "/secret-link")
        let delivery = try f.claim(10, "a")
        try await f.test { client in
            // The cid in the path: anything but a decimal number is refused, encoded or not.
            for cid in ["..", "..%2F..%2Foutside%2Fsecret", "%2e%2e", "-1", "1.0", "0x10", "+10", "99999999999999999999", "10%00", "%20%31%30", "10;a=b"] {
                let refused = try await client.execute(uri: "/\(TransferProtocol.pathPrefix)/\(cid)", method: .get, headers: f.headers(delivery))
                #expect(refused.status == .badRequest && refused.refusal == "invalid_cid", "\(cid): \(refused.status) \(refused.message)")
            }
            // Paths that leave the routes: no route, nothing served.
            for path in ["/\(TransferProtocol.pathPrefix)/10/../../../outside/secret", "/\(TransferProtocol.pathPrefix)/10/a", "/transfer/v1/levels/gold/a",
                         "/../outside/secret", "/transfer/v1/contents"] {
                let refused = try await client.execute(uri: path, method: .get, headers: f.headers(delivery))
                #expect((400..<500).contains(refused.status.code) && refused.refusal != nil, "\(path): \(refused.status)")
                #expect(!String(decoding: refused.bytes, as: UTF8.self).contains("secret outside"), "\(path)")
            }
            let unknown = try await client.execute(uri: TransferProtocol.contentPath(404), method: .get, headers: f.headers(delivery))
            #expect(unknown.status == .notFound && unknown.refusal == "unknown_cid")
        }
        // A job's filename is resolved beneath the level, without following a link, wherever it points.
        let jobs: [(Int64, String, String, HTTPResponse.Status, String)] = [
            (11, "linked/secret", "gold", .unprocessableContent, "unsafe_path"),
            (12, "secret-link", "gold", .unprocessableContent, "unsafe_path"),
            (13, "../outside/secret", "gold", .unprocessableContent, "invalid_filename"),
            (14, "/etc/passwd", "gold", .unprocessableContent, "invalid_filename"),
            (15, ".relocator/lock", "gold", .unprocessableContent, "invalid_filename"),
            (16, "dir", "gold", .unprocessableContent, "not_regular_file"),
            (17, "missing", "gold", .notFound, "source_missing"),
            (18, "a", "bronze", .notFound, "not_served"),
        ]
        for (cid, filename, level, status, code) in jobs {
            let other = try f.claim(cid, filename, from: level)
            try await f.test { client in
                let refused = try await client.execute(uri: TransferProtocol.contentPath(cid), method: .get, headers: f.headers(other))
                #expect(refused.status == status && refused.refusal == code, "\(filename): \(refused.status) \(refused.message)")
                #expect(!String(decoding: refused.bytes, as: UTF8.self).contains("secret outside"), "\(filename)")
            }
        }
    }

    /// A removal asked by the delivery whose file this endpoint served takes the content's lock
    /// in the level served from and reads the job once, under it; any other removal reads the job
    /// to learn the level, then again under the lock.
    @Test func aRemovalOfAFileThisEndpointServedReadsTheJobOnceUnderTheLock() async throws {
        let f = try TransferFixture()
        defer { f.remove() }
        var sums: [Int64: Checksum] = [:]
        var deliveries: [Int64: Delivery] = [:]
        for cid: Int64 in [30, 31] {
            try f.file("c\(cid).bin", bytes: 4096)
            let delivery = try f.claim(cid, "c\(cid).bin")
            let sum = try Checksum(parsing: "xxh128:" + TestFiles.xxh128(f.gold + "/c\(cid).bin"))
            try f.published(delivery, sum, bytes: 4096)
            (sums[cid], deliveries[cid]) = (sum, delivery)
        }
        let counting = CountingGateway(MemoryQueueGateway(f.queue))
        try await f.test(gateway: counting) { [sums, deliveries] client in
            let first = try #require(deliveries[30]), second = try #require(deliveries[31])
            let got = try await client.execute(uri: TransferProtocol.contentPath(30), method: .get,
                                               headers: f.headers(first, extra: [.range: "bytes=0-65535"]))
            #expect(got.status == .partialContent && got.bytes.count == 4096)
            #expect(counting.reads == 1)
            // Another secret than the one the file was served to: no level known, refused on the
            // job read before any lock.
            let wrong = try await client.execute(uri: TransferProtocol.removePath(30), method: .post,
                                                 headers: f.headers(first, secret: TransferSecret.random().text,
                                                                    extra: [TransferHeader.checksum: sums[30]!.description]))
            #expect(wrong.status == .forbidden && wrong.refusal == "wrong_credential")
            #expect(counting.reads == 2)
            let removed = try await client.execute(uri: TransferProtocol.removePath(30), method: .post,
                                                   headers: f.headers(first, extra: [TransferHeader.checksum: sums[30]!.description]))
            #expect(removed.status == .ok, "\(removed.message)")
            #expect(counting.reads == 3, "the served file's removal read the job once")
            // Never served here (a copy found in place): read before the lock and under it.
            let other = try await client.execute(uri: TransferProtocol.removePath(31), method: .post,
                                                 headers: f.headers(second, extra: [TransferHeader.checksum: sums[31]!.description]))
            #expect(other.status == .ok, "\(other.message)")
            #expect(counting.reads == 5)
        }
        #expect(!FileManager.default.fileExists(atPath: f.gold + "/c30.bin"))
        #expect(!FileManager.default.fileExists(atPath: f.gold + "/c31.bin"))
    }

    /// The level a file was served from to a delivery is no licence for its removal once the job
    /// moved on: served to delivery 1, then the job reaped and claimed again (a new token, its copy
    /// published and recorded with the same checksum), a removal asked by delivery 1 is refused;
    /// served, then the job naming another level this worker holds, the file served stays too.
    @Test func aRemovalByADeliveryServedBeforeTheJobMovedOnIsRefused() async throws {
        let f = try TransferFixture(alsoHolding: ["bronze"])
        defer { f.remove() }
        try f.file("e", bytes: 4096)
        let first = try f.claim(50, "e")
        let sum = try Checksum(parsing: "xxh128:" + TestFiles.xxh128(f.gold + "/e"))
        try f.published(first, sum, bytes: 4096)
        try await f.test { client in
            let got = try await client.execute(uri: TransferProtocol.contentPath(50), method: .get, headers: f.headers(first))
            #expect(got.status == .ok && got.bytes.count == 4096)
            // Reaped, and claimed again by another worker, whose copy is published with the same checksum.
            #expect(try f.queue.release(worker: "edge", fence: true) == 1)
            let second = try f.deliver(50, worker: "edge2")
            try f.published(second, sum, bytes: 4096)
            let removal = try await client.execute(uri: TransferProtocol.removePath(50), method: .post,
                                                   headers: f.headers(first, extra: [TransferHeader.checksum: sum.description]))
            #expect(removal.status == .forbidden && removal.refusal == "wrong_credential", "\(removal.status) \(removal.message)")
        }
        #expect(FileManager.default.fileExists(atPath: f.gold + "/e"))

        // Served from gold; then the job names bronze (a file of the same name there, another one).
        try f.file("g", bytes: 4096)
        try Data(repeating: 3, count: 4096).write(to: URL(fileURLWithPath: f.dir.path + "/bronze/g"))
        let delivery = try f.claim(51, "g")
        let served = try Checksum(parsing: "xxh128:" + TestFiles.xxh128(f.gold + "/g"))
        try f.published(delivery, served, bytes: 4096)
        try await f.test { client in
            let got = try await client.execute(uri: TransferProtocol.contentPath(51), method: .get, headers: f.headers(delivery))
            #expect(got.status == .ok && got.bytes.count == 4096)
            f.queue.corrupt(cid: 51, field: .dbLevel, value: "bronze")
            let removal = try await client.execute(uri: TransferProtocol.removePath(51), method: .post,
                                                   headers: f.headers(delivery, extra: [TransferHeader.checksum: served.description]))
            #expect(removal.status == .conflict && removal.refusal == "checksum_mismatch", "\(removal.status) \(removal.message)")
        }
        #expect(FileManager.default.fileExists(atPath: f.gold + "/g"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: f.dir.path + "/bronze/g")) == Data(repeating: 3, count: 4096))
    }

    @Test func theSourceIsRemovedOnlyOnceTheCopysChecksumIsRecordedAndEqualsItsOwn() async throws {
        let f = try TransferFixture()
        defer { f.remove() }
        try f.file("movies/b.mp4", bytes: 2 << 20)
        let path = f.gold + "/movies/b.mp4"
        let delivery = try f.claim(20, "movies/b.mp4")
        let sum = try Checksum(parsing: "xxh128:" + TestFiles.xxh128(path))
        let other = try Checksum(parsing: "xxh128:" + String(repeating: "0", count: 32))
        @Sendable func ask(_ client: any TestClientProtocol, _ checksum: String?, token: String? = nil) async throws -> TestResponse {
            var extra: HTTPFields = [:]
            if let checksum { extra[TransferHeader.checksum] = checksum }
            return try await client.execute(uri: TransferProtocol.removePath(20), method: .post, headers: f.headers(delivery, token: token, extra: extra))
        }
        try await f.test { client in
            // Nothing recorded yet: no proof.
            let early = try await ask(client, sum.description)
            #expect(early.status == .conflict && early.refusal == "not_proven", "\(early.message)")
            let garbled = try await ask(client, "xxh128:zz")
            #expect(garbled.status == .badRequest && garbled.refusal == "invalid_checksum")
            let absent = try await ask(client, nil)
            #expect(absent.status == .badRequest && absent.refusal == "invalid_checksum")
        }
        #expect(FileManager.default.fileExists(atPath: path))
        // The delivery records a checksum that is not the source's: asked with it, the source is kept.
        try f.published(delivery, other, bytes: 2 << 20)
        try await f.test { client in
            let differs = try await ask(client, other.description)
            #expect(differs.status == .conflict && differs.refusal == "checksum_mismatch", "\(differs.message)")
            let notRecorded = try await ask(client, sum.description)
            #expect(notRecorded.status == .conflict && notRecorded.refusal == "not_proven")
        }
        #expect(FileManager.default.fileExists(atPath: path))
        #expect(try f.queue.record(delivery, .publishing(sum, bytes: 2 << 20)))
        // Recorded before the link: the copy may not exist yet, nor be durable. Not a proof.
        try await f.test { client in
            let publishing = try await ask(client, sum.description)
            #expect(publishing.status == .conflict && publishing.refusal == "not_proven", "\(publishing.message)")
        }
        #expect(FileManager.default.fileExists(atPath: path))
        #expect(try f.queue.record(delivery, .published))
        // Another holder of the content's lock (a move of it on this host): the source is kept, ask again.
        let held = try #require(try ContentLock.tryLock(cid: 20, in: [f.levels.roots["gold"]!]))
        try await f.test { client in
            let locked = try await ask(client, sum.description)
            #expect(locked.status == .conflict && locked.refusal == "content_locked")
            let wrongToken = try await ask(client, sum.description, token: delivery.job.deliveryToken + "9")
            #expect(wrongToken.status == .forbidden)
        }
        held.release()
        #expect(FileManager.default.fileExists(atPath: path))
        try await f.test { client in
            // The lock is free once every descriptor of it is closed: a process another test forks
            // holds a copy of the test's own until it execs. A refusal for the lock is asked again,
            // as a transfer's client does.
            var removed = try await ask(client, sum.description)
            let deadline = ContinuousClock.now + .seconds(10)
            while removed.refusal == "content_locked" && ContinuousClock.now < deadline { removed = try await ask(client, sum.description) }
            #expect(removed.status == .ok, "\(removed.message)")
            let answer = try JSONDecoder().decode(TransferEndpoint.Removal.self, from: removed.bytes)
            #expect(answer == TransferEndpoint.Removal(outcome: "removed", cid: 20, hash: "read"))
            #expect(!FileManager.default.fileExists(atPath: path))
            // Asked again (its answer lost): nothing left to remove, said so.
            let again = try await ask(client, sum.description)
            #expect(try again.status == .ok && (JSONDecoder().decode(TransferEndpoint.Removal.self, from: again.bytes)).outcome == "already_gone")
        }
    }

    @Test func aSourceChangedSinceTheCopyIsKept() async throws {
        let f = try TransferFixture()
        defer { f.remove() }
        try f.file("c", bytes: 8192)
        let delivery = try f.claim(21, "c")
        let sum = try Checksum(parsing: "xxh128:" + TestFiles.xxh128(f.gold + "/c"))
        try f.published(delivery, sum, bytes: 8192)
        try Data(repeating: 9, count: 8192).write(to: URL(fileURLWithPath: f.gold + "/c"))
        try await f.test { client in
            var extra: HTTPFields = [:]
            extra[TransferHeader.checksum] = sum.description
            let refused = try await client.execute(uri: TransferProtocol.removePath(21), method: .post, headers: f.headers(delivery, extra: extra))
            #expect(refused.status == .conflict && refused.refusal == "checksum_mismatch", "\(refused.message)")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: f.gold + "/c")) == Data(repeating: 9, count: 8192))
    }

    /// A source written to after its copy was made, though its bytes were put back: the removal
    /// names the version the copy was made of, and the source's worker keeps a source that is no
    /// longer that version (412 version_changed), whatever its bytes hash to; the puller then
    /// withdraws its copy. The same removal without a version, or with the current one, removes it.
    @Test func aRemovalNamingTheCopiedVersionKeepsASourceWrittenToSince() async throws {
        let f = try TransferFixture()
        defer { f.remove() }
        try f.file("d", bytes: 8192)
        let delivery = try f.claim(22, "d")
        let path = f.gold + "/d"
        let sum = try Checksum(parsing: "xxh128:" + TestFiles.xxh128(path))
        try f.published(delivery, sum, bytes: 8192, sourceVersion: "will be read")
        try await f.test { client in
            let head = try await client.execute(uri: TransferProtocol.contentPath(22), method: .head, headers: f.headers(delivery))
            let copied = try #require(head.headers[TransferHeader.version])
            // Written to (the same bytes again, a later modification time).
            let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
            try RedisProcesses.waitUntil("the clock passes the copied version's times") { Date().timeIntervalSince1970 > (try FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as! Date).timeIntervalSince1970 + 0.01 }
            try bytes.write(to: URL(fileURLWithPath: path))
            var extra: HTTPFields = [:]
            extra[TransferHeader.checksum] = sum.description
            extra[TransferHeader.version] = copied
            var refused = try await client.execute(uri: TransferProtocol.removePath(22), method: .post, headers: f.headers(delivery, extra: extra))
            let deadline = ContinuousClock.now + .seconds(10)
            while refused.refusal == "content_locked" && ContinuousClock.now < deadline {
                refused = try await client.execute(uri: TransferProtocol.removePath(22), method: .post, headers: f.headers(delivery, extra: extra))
            }
            #expect(refused.status == .preconditionFailed && refused.refusal == "version_changed", "\(refused.message)")
            #expect(FileManager.default.fileExists(atPath: path))
            extra[TransferHeader.version] = nil
            var removed = try await client.execute(uri: TransferProtocol.removePath(22), method: .post, headers: f.headers(delivery, extra: extra))
            while removed.refusal == "content_locked" && ContinuousClock.now < deadline {
                removed = try await client.execute(uri: TransferProtocol.removePath(22), method: .post, headers: f.headers(delivery, extra: extra))
            }
            #expect(removed.status == .ok, "\(removed.message)")
            #expect(!FileManager.default.fileExists(atPath: path))
        }
    }
}
