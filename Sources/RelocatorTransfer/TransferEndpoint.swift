import FileMover
import Foundation
import Hummingbird
import Logging
import RelocatorCore
import Synchronization

/// What a worker's transfer endpoint serves: the files of the levels it holds, each only to the
/// current delivery of the job that moves it from there (`TransferProtocol`). The file is named by
/// the job, never by the request: a request names a cid, and the job's filename is resolved
/// beneath the held level directory as every name of a move (`LevelRoot`).
public struct TransferEndpoint: Sendable {
    public let levels: HeldLevels
    public let queue: any QueueGateway
    public let logger: Logger
    /// The key the workers share: every request must be signed under it (nil: none is required).
    public let signingKey: TransferSigningKey?
    /// The level each delivery's file was last served from (`GET`), for its removal.
    let served: ServedDeliveries
    /// An inquiry's looks at the levels, each level's on a queue of its own and waited for at
    /// most their patience: a disk that does not answer holds up neither a request nor the
    /// process's other work.
    let looks: DiskLooks

    /// `lookPatience`: how long an inquiry waits for a level's disk (`DiskLooks`).
    public init(levels: HeldLevels, queue: any QueueGateway, logger: Logger, signingKey: TransferSigningKey? = nil,
                lookPatience: Duration = .seconds(2)) {
        self.init(levels: levels, queue: queue, logger: logger, signingKey: signingKey, settledFor: ServedDeliveries.settledFor,
                  lookPatience: lookPatience)
    }

    /// `settledFor`: how long before its first range a file must have last changed for its hash
    /// to be carried on as it is served (`ServedDeliveries`).
    init(levels: HeldLevels, queue: any QueueGateway, logger: Logger, signingKey: TransferSigningKey?, settledFor: Duration,
         lookPatience: Duration = .seconds(2)) {
        self.levels = levels
        self.queue = queue
        self.logger = logger
        self.signingKey = signingKey
        self.served = ServedDeliveries(settledFor: settledFor)
        self.looks = DiskLooks(patience: lookPatience)
    }

    /// The routes, for a server or Hummingbird's router tests.
    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: TransferErrorMiddleware(logger: logger))
        let endpoint = self
        router.get("\(TransferProtocol.pathPrefix)/:cid") { request, context in
            try await endpoint.serve(request, cid: context.parameters.get("cid") ?? "")
        }
        router.head("\(TransferProtocol.pathPrefix)/:cid") { request, context in
            try await endpoint.prefix(request, cid: context.parameters.get("cid") ?? "")
        }
        router.post("\(TransferProtocol.pathPrefix)/:cid/remove") { request, context in
            try await endpoint.remove(request, cid: context.parameters.get("cid") ?? "")
        }
        router.get("\(TransferProtocol.pathPrefix)/:cid/inquiry") { request, context in
            try await endpoint.inquiry(request, cid: context.parameters.get("cid") ?? "")
        }
        return router
    }

    /// The job the request names, checked: its cid and generation, the delivery's token and secret
    /// (in constant time, against what the live delivery recorded), the job in flight, its source
    /// a level this worker holds.
    func job(_ request: Request, cid text: String, _ session: any JobQueueSession) throws -> (Job, LevelRoot, Filename) {
        let (presented, secret) = try Self.credentials(request)
        try checkSignature(request, cid: text)
        guard !text.isEmpty, text.count <= 19, text.allSatisfy({ $0.isASCII && $0.isNumber }), let cid = Int64(text) else {
            throw TransferRefusal(.invalidCID, "a content id is a non-negative decimal number (got '\(text.prefix(64))')")
        }
        guard let genText = request.headers[TransferHeader.gen] else {
            throw TransferRefusal(.invalidGen, "the request names no job generation (\(TransferProtocol.genHeader))")
        }
        guard genText.count <= 19, genText.allSatisfy({ $0.isASCII && $0.isNumber }), let gen = Int64(genText) else {
            throw TransferRefusal(.invalidGen, "\(TransferProtocol.genHeader) must be a decimal number (got '\(genText.prefix(64))')")
        }
        let job: Job
        switch try session.readJob(cid: cid) {
        case nil: throw TransferRefusal(.unknownCID, "content \(cid) has no job")
        case .failure(let problem): throw TransferRefusal(.unknownCID, "the job of content \(cid) cannot be read: \(problem)")
        case .success(let read): job = read
        }
        // The secret's key as the live delivery would have recorded it: an earlier delivery's key
        // names another token. Both compared whatever the first comparison found.
        let expectedKey = TransferProtocol.transferKey(token: job.deliveryToken, digest: TransferSecret.digest(of: secret))
        let tokenMatches = ConstantTime.equal(Array(presented.utf8), Array(job.deliveryToken.utf8))
        let secretMatches = ConstantTime.equal(Array(expectedKey.utf8), Array((job.transferKey ?? "").utf8))
        guard tokenMatches, secretMatches, job.token != nil, job.transferKey != nil else {
            throw TransferRefusal(.wrongCredential, "the credentials are not those of content \(cid)'s current delivery")
        }
        // (Nothing of the job in the answer: a caller that is not its delivery learns nothing.)
        guard job.gen == gen, job.status == .moving else {
            throw TransferRefusal(.staleDelivery, "the request names no delivery of content \(cid)'s job in flight now")
        }
        guard let root = levels.roots[job.dbLevel] else {
            throw TransferRefusal(.notServed, "level '\(job.dbLevel)' of content \(cid) is not one this worker holds")
        }
        // A move whose target is on this host is this host's own: no other host pulls it, so nobody
        // is served its file or may have its source removed.
        guard !levels.holds(job.target) else {
            throw TransferRefusal(.notServed, "content \(cid)'s job moves it to '\(job.target)', a level this worker holds: it is not pulled")
        }
        let filename: Filename
        do {
            filename = try Filename(job.filename)
        } catch {
            throw TransferRefusal(.invalidFilename, "the job's filename \(job.filename.debugDescription.prefix(200)): \(error)")
        }
        return (job, root, filename)
    }

    /// The delivery token and the secret a request presents; `missing_credential` without them.
    static func credentials(_ request: Request) throws -> (token: String, secret: String) {
        guard let token = request.headers[TransferHeader.delivery], !token.isEmpty else {
            throw TransferRefusal(.missingCredential, "the request carries no delivery token (\(TransferProtocol.deliveryHeader))")
        }
        guard let secret = request.headers[TransferHeader.secret], !secret.isEmpty else {
            throw TransferRefusal(.missingCredential, "the request carries no secret (\(TransferProtocol.secretHeader))")
        }
        guard secret.utf8.count <= TransferProtocol.maximumSecretLength else {
            throw TransferRefusal(.wrongCredential, "the secret is longer than any this endpoint accepts")
        }
        return (token, secret)
    }

    /// With a shared key: the request's signature, over what it asks (`TransferProtocol.signedText`).
    func checkSignature(_ request: Request, cid: String) throws {
        guard let signingKey else { return }
        guard let signature = request.headers[TransferHeader.signature], !signature.isEmpty else {
            throw TransferRefusal(.missingCredential, "the request carries no signature (\(TransferProtocol.signatureHeader)); this worker shares a key")
        }
        guard signature.utf8.count <= 128,
              signingKey.verifies(signature, method: request.method.rawValue, path: request.uri.path, cid: cid,
                                  gen: request.headers[TransferHeader.gen] ?? "", range: request.headers[TransferHeader.range] ?? "") else {
            throw TransferRefusal(.wrongSignature, "the request's signature is not one under this worker's shared key (--transfer-secret-file)")
        }
    }

    /// `GET`: a range of the file, with its checksum (xxh128: it guards the bytes on their way; the
    /// whole file's checksum is the proof), the file's size and version.
    func serve(_ request: Request, cid: String) async throws -> Response {
        return try await queue.withSession { session in
            let (job, root, filename) = try self.job(request, cid: cid, session)
            if let key = job.transferKey { self.served.remember(cid: job.cid, key: key, level: job.dbLevel) }
            guard let file = try root.openForTransfer(filename) else {
                throw TransferRefusal(.sourceMissing, "\(job.dbLevel)/\(filename.value) is not there")
            }
            if let expected = request.headers[TransferHeader.version], expected != file.version {
                throw TransferRefusal(.versionChanged, "\(job.dbLevel)/\(filename.value) changed since the transfer began (now version \(file.version))")
            }
            let offset: Int64
            let length: Int
            if let header = request.headers[TransferHeader.range] {
                let range: (offset: Int64, length: Int)?
                do {
                    range = try TransferProtocol.range(header, size: file.size)
                } catch {
                    throw TransferRefusal(.invalidRange, "\(error)")
                }
                guard let range else {
                    var headers: HTTPFields = [TransferHeader.contentRange: "bytes */\(file.size)"]
                    headers[TransferHeader.size] = "\(file.size)"
                    headers[TransferHeader.version] = file.version
                    throw TransferRefusal(.rangeNotSatisfiable, "\(header.prefix(64)) is past the end of the file (\(file.size) bytes)", headers: headers)
                }
                (offset, length) = range
            } else {
                guard file.size <= Int64(TransferProtocol.maximumRange) else {
                    throw TransferRefusal(.invalidRange, "the file has \(file.size) bytes: ask for at most \(TransferProtocol.maximumRange) at a time with Range")
                }
                (offset, length) = (0, Int(file.size))
            }
            // Read straight into the answer's buffer; a long file's whole hash carried on as its
            // ranges are served in order to this delivery (its removal then need not read it again).
            var body = ByteBufferAllocator().buffer(capacity: length)
            var checksum: Checksum?
            if length > 0 {
                let key = job.transferKey
                let whole = key.flatMap {
                    self.served.wholeHash(cid: job.cid, key: $0, version: file.version, offset: offset, size: file.size,
                                          settled: offset > 0 || file.changedBefore(self.served.settledFor))
                }
                try body.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { raw in
                    let (count, sum) = try file.read(at: offset, into: UnsafeMutableRawBufferPointer(rebasing: raw[0..<length]), algorithm: .xxh128,
                                                     continuing: whole)
                    checksum = sum
                    return count
                }
                if let key, let whole {
                    self.served.hashed(cid: job.cid, key: key, version: file.version, from: offset, through: offset + Int64(body.readableBytes), whole)
                }
            } else {
                checksum = try file.read(at: offset, into: UnsafeMutableRawBufferPointer(start: nil, count: 0), algorithm: .xxh128).checksum
            }
            let count = body.readableBytes
            var headers: HTTPFields = [.contentType: "application/octet-stream", .contentLength: "\(count)"]
            headers[TransferHeader.size] = "\(file.size)"
            headers[TransferHeader.version] = file.version
            headers[TransferHeader.rangeChecksum] = checksum?.description
            headers[TransferHeader.attributes] = try file.attributes().header
            let partial = request.headers[TransferHeader.range] != nil
            if partial { headers[TransferHeader.contentRange] = TransferProtocol.contentRange(offset: offset, length: Int64(count), size: file.size) }
            return Response(status: partial ? .partialContent : .ok, headers: headers, body: .init(byteBuffer: body))
        }
    }

    /// `HEAD`: the file's size, version and attributes, and no bytes; with `Range: bytes=0-<n-1>`
    /// also the checksum of its first n bytes, hashed here — any n up to the size (how a resumed
    /// pull checks the prefix it kept, and a copy found at the target is compared). A request
    /// carrying `Relocator-Version` is refused once the file changed.
    func prefix(_ request: Request, cid: String) async throws -> Response {
        try await queue.withSession { session in
            let (job, root, filename) = try self.job(request, cid: cid, session)
            guard let file = try root.openForTransfer(filename) else {
                throw TransferRefusal(.sourceMissing, "\(job.dbLevel)/\(filename.value) is not there")
            }
            if let expected = request.headers[TransferHeader.version], expected != file.version {
                throw TransferRefusal(.versionChanged, "\(job.dbLevel)/\(filename.value) changed since the transfer began (now version \(file.version))")
            }
            var headers: HTTPFields = [:]
            headers[TransferHeader.size] = "\(file.size)"
            headers[TransferHeader.version] = file.version
            headers[TransferHeader.attributes] = try file.attributes().header
            if let header = request.headers[TransferHeader.range] {
                let digits = header.dropFirst("bytes=0-".count)
                guard header.hasPrefix("bytes=0-"), !digits.isEmpty, digits.count <= 18, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
                      let last = Int64(digits), last < file.size else {
                    throw TransferRefusal(.invalidRange, "HEAD asks for a prefix: bytes=0-<last>, below the size \(file.size)")
                }
                headers[TransferHeader.rangeChecksum] = try file.prefixChecksum(last + 1).description
            }
            return Response(status: .ok, headers: headers)
        }
    }

    /// What a removal answers.
    public struct Removal: Codable, Equatable, Sendable {
        /// `removed` or `already_gone` (`LevelRoot.ProvenRemoval`).
        public var outcome: String
        public var cid: Int64
        /// The source's hash compared with the proof: `read` at the removal, or `served` (made as
        /// the file was served whole); none when there was no file (`LevelRoot.SourceHash`).
        public var hash: String?

        public init(outcome: String, cid: Int64, hash: String? = nil) {
            self.outcome = outcome
            self.cid = cid
            self.hash = hash
        }
    }

    /// `POST …/remove`: the source removed once proven — under the content's lock, the job's
    /// current delivery must have recorded this checksum and its copy published (`stage=published`),
    /// and the source must hash to it, unchanged.
    func remove(_ request: Request, cid: String) async throws -> Response {
        let (presented, secret) = try Self.credentials(request)
        try checkSignature(request, cid: cid)
        guard let text = request.headers[TransferHeader.checksum] else {
            throw TransferRefusal(.invalidChecksum, "the request names no checksum of the copy (\(TransferProtocol.checksumHeader))")
        }
        let proof: Checksum
        do {
            proof = try Checksum(parsing: text)
        } catch {
            throw TransferRefusal(.invalidChecksum, "\(TransferProtocol.checksumHeader): \(error)")
        }
        let removal = try await queue.withSession { session in
            // The level this delivery's file was served from, when this endpoint served it (the
            // same token and secret): its lock is taken first and the job read once, under it.
            // Otherwise the job names the level (read, checked), then read again under the lock.
            let known = Int64(cid).flatMap { number in
                self.served.level(cid: number, key: TransferProtocol.transferKey(token: presented, digest: TransferSecret.digest(of: secret)))
            }.flatMap { served in self.levels.roots[served.level].map { (served.checksum, $0) } }
            /// The job read under its content's lock in `root` (nil: it names another level now).
            func readLocked(in root: LevelRoot, cid number: Int64) throws -> (Job, LevelRoot, Filename, ContentLock)? {
                guard let taken = try ContentLock.tryLock(cid: number, in: [root]) else {
                    throw TransferRefusal(.contentLocked, "another delivery of content \(number) holds its lock in level '\(root.level)'; ask again")
                }
                do {
                    let (read, readRoot, name) = try self.job(request, cid: cid, session)
                    guard readRoot === root else {
                        taken.release()
                        return nil
                    }
                    return (read, readRoot, name, taken)
                } catch {
                    taken.release()
                    throw error
                }
            }
            var locked: (Job, LevelRoot, Filename, ContentLock)?
            // The source's hash as served whole to this delivery, when it was (see `removeProven`).
            var servedChecksum: ServedChecksum?
            if let (checksum, knownRoot) = known, let number = Int64(cid) {
                locked = try readLocked(in: knownRoot, cid: number)
                if locked != nil { servedChecksum = checksum }
            }
            if locked == nil {
                let (read, readRoot, _) = try self.job(request, cid: cid, session)
                // Read again under the lock: a later delivery or generation bumps what was checked.
                locked = try readLocked(in: readRoot, cid: read.cid)
                guard locked != nil else {
                    throw TransferRefusal(.staleDelivery, "the request names no delivery of content \(read.cid)'s job in flight now")
                }
            }
            guard let (job, root, filename, lock) = locked else { preconditionFailure("read under its lock above") }
            defer { lock.release() }
            let held = job
            // Published: linked under its final name and that directory fsynced on the target's host
            // (`publishing` is recorded before the link: the copy may not exist yet).
            guard held.stage == .published, let recorded = held.checksum, let recordedSum = try? Checksum(parsing: recorded), recordedSum == proof else {
                throw TransferRefusal(.notProven, "content \(held.cid)'s job has recorded no published copy with checksum \(proof) (stage \(held.stage?.rawValue ?? "none"))")
            }
            // The source as the copy was made of: one written to since (a newer version) stays, and
            // the puller withdraws its copy — also when the writing fell while it was hashed here.
            let expected = request.headers[TransferHeader.version]
            func newerVersion() throws -> TransferRefusal? {
                guard let expected, let file = try root.openForTransfer(filename), expected != file.version else { return nil }
                return TransferRefusal(.versionChanged, "\(held.dbLevel)/\(filename.value) changed since its copy was made (now version \(file.version)); it is kept")
            }
            if let refusal = try newerVersion() { throw refusal }
            let outcome: (outcome: LevelRoot.ProvenRemoval, hash: LevelRoot.SourceHash?)
            do {
                outcome = try root.removeProven(filename, checksum: proof, holding: lock, served: servedChecksum)
            } catch let error as MoveError where error.kind == .checksumMismatch || error.kind == .sourceChanged {
                if let refusal = try newerVersion() { throw refusal }
                throw error
            }
            self.logger.info("removed the source of a copy proven elsewhere", metadata: [
                "job.cid": "\(job.cid)", "job.from": "\(job.dbLevel)", "job.to": "\(job.target)", "outcome": "\(outcome.outcome.rawValue)",
                "source.hash": "\(outcome.hash?.rawValue ?? "none")"])
            return Removal(outcome: outcome.outcome.rawValue, cid: job.cid, hash: outcome.hash?.rawValue)
        }
        var buffer = ByteBuffer()
        buffer.writeBytes(try JSONEncoder().encode(removal))
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: buffer))
    }
}

/// The level each delivery's file was last served from (`GET`), by content, with the delivery's
/// transfer key: its removal takes the content's lock there first and reads the job once, under
/// the lock (which checks it all again). A request whose token and secret do not make that key
/// finds nothing here. At most `most` entries (all forgotten when full: the removal then reads
/// the job before the lock too).
///
/// For a file of at least `wholeHashFrom` bytes, also its whole hash as served: carried on range
/// after range while the delivery asks for them in order, from the first byte, all of one version
/// (any other range forgets it). Once it covers the whole file, the removal of that version uses
/// it instead of reading the file again (`LevelRoot.removeProven`).
final class ServedDeliveries: Sendable {
    static let most = 4096
    /// How long before its first range a file must have last changed (`ServedDeliveries.settledFor`
    /// by default).
    let settledFor: Duration

    init(settledFor: Duration = ServedDeliveries.settledFor) {
        self.settledFor = settledFor
    }

    /// The shortest file whose hash is carried on as it is served (a shorter one is read again
    /// at its removal, most likely from the page cache).
    static let wholeHashFrom: Int64 = 1 << 20
    /// The most whole hashes held at once (each some 600 bytes; pulls that stopped leave theirs:
    /// at the most, a new one drops the one begun first).
    static let mostWholeHashes = 64
    /// How long before its first range is served a file must have last changed for its hash to
    /// be carried on (a second more for a file system that keeps whole seconds: `ServedFile.settled`):
    /// a write made after that changes its version's times even where they step by whole clock
    /// ticks (twice the coarsest, 10 ms) (docs/CROSSHOST.md).
    static let settledFor: Duration = .milliseconds(20)

    struct Whole {
        var version: String
        var size: Int64
        /// When it was begun, in the order of `begun` (the oldest is dropped at the most).
        var begun: UInt64
        /// The bytes hashed so far: `[0, through)`.
        var through: Int64
        /// Nil while a range is being hashed into it.
        var hash: WholeFileHash?
    }

    struct Entry {
        var key: String
        var level: String
        var whole: Whole?
    }

    private let served = Mutex<[Int64: Entry]>([:])
    /// How many whole hashes were begun (their order).
    private let begun = Atomic<UInt64>(0)

    func remember(cid: Int64, key: String, level: String) {
        served.withLock { served in
            if served.count >= Self.most && served[cid] == nil { served.removeAll(keepingCapacity: true) }
            if served[cid]?.key == key && served[cid]?.level == level { return }
            served[cid] = Entry(key: key, level: level)
        }
    }

    /// The whole hash to carry on with the range of `size`-byte content `cid` served from
    /// `offset` to the delivery whose key is `key` (remembered first): a new one from the first
    /// byte, when the file had `settled` (`settledFor`); the one that holds every byte before
    /// `offset` of this version; else none, and the one held is forgotten. Handed back with
    /// `hashed` once the range is read.
    func wholeHash(cid: Int64, key: String, version: String, offset: Int64, size: Int64, settled: Bool) -> WholeFileHash? {
        guard size >= Self.wholeHashFrom else { return nil }
        return served.withLock { served -> WholeFileHash? in
            guard var entry = served[cid], ConstantTime.equal(Array(entry.key.utf8), Array(key.utf8)) else { return nil }
            defer { served[cid] = entry }
            if offset == 0 {
                guard settled else {
                    entry.whole = nil
                    return nil
                }
                if entry.whole == nil {
                    let held = served.compactMap { cid, other in other.whole.map { (cid: cid, begun: $0.begun) } }
                    if held.count >= Self.mostWholeHashes, let oldest = held.min(by: { $0.begun < $1.begun }) {
                        served[oldest.cid]?.whole = nil
                    }
                }
                entry.whole = Whole(version: version, size: size, begun: begun.wrappingAdd(1, ordering: .relaxed).newValue, through: 0, hash: nil)
                return WholeFileHash()
            }
            guard let whole = entry.whole, whole.version == version, whole.size == size, whole.through == offset, let hash = whole.hash,
                  hash.clockHeld else {
                entry.whole = nil
                return nil
            }
            entry.whole?.hash = nil
            return hash
        }
    }

    /// `hash` from `wholeHash`, now holding every byte before `through`, read from `version`:
    /// held again, unless the entry changed meanwhile (then it is forgotten).
    func hashed(cid: Int64, key: String, version: String, from offset: Int64, through: Int64, _ hash: WholeFileHash) {
        served.withLock { served in
            guard var entry = served[cid], entry.key == key else { return }
            if let whole = entry.whole, whole.version == version, whole.through == offset, whole.hash == nil {
                entry.whole = Whole(version: version, size: whole.size, begun: whole.begun, through: through, hash: hash)
            } else {
                entry.whole = nil
            }
            served[cid] = entry
        }
    }

    /// The level content `cid`'s file was served from to the delivery whose key is `key`, with
    /// its whole hash when it was served whole in order, and forgotten (a removal is asked once;
    /// asked again, the job is read first and the file hashed).
    func level(cid: Int64, key: String) -> (level: String, checksum: ServedChecksum?)? {
        served.withLock { served -> (level: String, checksum: ServedChecksum?)? in
            guard let entry = served[cid], ConstantTime.equal(Array(entry.key.utf8), Array(key.utf8)) else { return nil }
            served[cid] = nil
            var checksum: ServedChecksum?
            // (A step of the wall clock since the hash began: the file is read again at its removal.)
            if let whole = entry.whole, let hash = whole.hash, whole.through == whole.size, hash.clockHeld {
                checksum = ServedChecksum(version: whole.version, checksum: hash.checksum())
            }
            return (entry.level, checksum)
        }
    }
}
