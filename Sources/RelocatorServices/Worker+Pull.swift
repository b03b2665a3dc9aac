import FileMover
import Foundation
import Logging
import RelocatorCore

/// Moves between levels on different hosts: the worker that holds the target level pulls the file
/// from a live worker that holds the source (`TransferProtocol`), in chunks, and the source side
/// removes its copy only once proven (docs/CROSSHOST.md).
extension Worker {
    /// How many bytes one request of a pull asks for.
    static let pullChunk = 8 << 20
    /// The most bytes one payment to the level's bandwidth bucket covers: the rate holds in steps
    /// of at most this much, never whole chunks.
    static let pullPacingStep: Int64 = 1 << 20
    /// How many bytes of a range are written and hashed at a time, as they arrive.
    static let pullPiece: Int64 = 256 << 10
    /// How many bytes a fresh pull's first request asks for: the request that locates the source
    /// (its size, version and attributes) brings them too, so a file this small is pulled in one
    /// request. They are held in memory until the room in the target is admitted.
    static let pullFirstRange = 64 << 10
    /// How many times a range that arrived changed, short, long or empty is asked again.
    static let pullChunkAttempts = 3
    /// How often a pull whose source's worker cannot be reached (a partition, a restart) asks again,
    /// holding its delivery, its content's lock and its temporary file: it goes on within about this
    /// long of the link coming back (a connection attempt gives up after 2 s, an idle read after 10 s).
    static let pullReconnectInterval: Duration = .seconds(1)
    /// How long a pull waits so for a source's worker whose heartbeat says it is alive; then the job
    /// is deferred (no attempt counted) and the slot freed.
    static let pullPatience: Duration = .seconds(120)

    /// The content's lock in the target level, held across the attempts of one delivery's pull:
    /// while it waits for the network, no sweep takes its temporary file.
    final class PullLock {
        var lock: ContentLock?

        func release() {
            lock?.release()
            lock = nil
        }
    }

    /// True when this worker pulls `job`'s file: it serves transfers, holds the target level and
    /// has no directory for the source level (another host's, or a level named nowhere).
    func pullsFromAnotherHost(_ job: Job) -> Bool {
        settings.transfer != nil && levels != nil && settings.directories.directory(of: job.dbLevel) == nil
            && settings.directories.directory(of: job.target) != nil
    }

    /// A pull that must wait without an attempt (no room in the target level yet).
    struct PullDeferred: Error {
        let reason: String
    }

    /// Pulls the delivery's file, publishes it, has the source removed, and ends the delivery. A
    /// source's worker that cannot be reached is asked again every `pullReconnectInterval`, with
    /// the delivery, the lock and the verified prefix kept, for up to `pullPatience`; then the job
    /// waits in the queue, counting no attempt.
    func pullAndEnd(_ delivery: Delivery, _ session: any JobQueueing, _ context: MoveContext, _ log: Logger, permit holder: String) {
        let held = PullLock()
        defer { held.release() }
        var current = delivery
        var waitingSince: ContinuousClock.Instant?
        let limited = placement.withLock { $0 }?.policies[delivery.job.target]?.maxMoves != nil
        let waitRenewal = PullRenewal(worker: self, session: session, log: log, permit: limited ? (delivery.job.target, holder) : nil, room: nil)
        do {
            while true {
                do {
                    let result = try pull(current, session, log, holder: holder, lock: held)
                    finishPulled(current, result, context, session, log)
                    return
                } catch let error as TransferClient.Unreachable {
                    let since = waitingSince ?? .now
                    if waitingSince == nil {
                        log.notice("the source's worker cannot be reached (\(error)); asking again every \(Self.pullReconnectInterval)")
                    }
                    waitingSince = since
                    if cancel.isRaised || ContinuousClock.now - since >= Self.pullPatience { throw error }
                    // The level's move permit stays this slot's while it waits (it lapses unless renewed).
                    waitRenewal.renew()
                    cancel.wait(for: Self.pullReconnectInterval)
                    if cancel.isRaised { throw error }
                    // How far this delivery got (verified bytes, a published copy), as it recorded it.
                    guard let reading = session as? any QueueReading, let fresh = try reading.jobs(cids: [current.job.cid])[current.job.cid],
                          fresh.gen == current.job.gen, fresh.deliveryToken == current.token, fresh.status == .moving else {
                        throw MoveError(.leaseLost, "job \(current.id) is no longer this delivery's")
                    }
                    current.job = fresh
                }
            }
        } catch let error as MoveError {
            held.release()
            if error.kind == .levelUnavailable { checkLevels() }
            report(current, error, context, session, log)
        } catch let error as TransferClient.TLSRefused {
            held.release()
            // A configuration to mend (a CA missing or not the peer's, a certificate for another
            // address): counted, retried with backoff, then dead, with the reason on the job.
            report(current, MoveError(.transferTLS, "the source's worker cannot be asked: \(error)"), context, session, log)
        } catch let error as TransferClient.Unreachable {
            held.release()
            // A network problem is not the move's: the job waits, counting no attempt.
            report(current, MoveError(.levelUnavailable, "the source's worker cannot be reached: \(error)"), context, session, log)
        } catch let deferred as PullDeferred {
            held.release()
            retrying("end the move", log) {
                if try session.complete(current, .deferred(reason: deferred.reason, delay: settings.deferRetry, lockHeld: true)) == .deferred {
                    log.notice("move deferred: \(deferred.reason)")
                }
            }
        } catch {
            held.release()
            report(current, MoveError(.ioError, "cannot record the move in Redis: \(error)"), context, session, log)
        }
    }

    /// What the source's worker says of the file (`HEAD`, or the `GET` of its first range): its
    /// size, version and attributes; and, when located by that `GET`, the file's first bytes,
    /// exactly the range asked and equal to their checksum (nil: asked again).
    struct PulledSource {
        var client: TransferClient
        var size: Int64
        var version: String
        var attributes: FileAttributes?
        var first: [UInt8]? = nil
    }

    /// The steps of a pull, under the content's lock in the target level. Returns the result of a
    /// move whose source is removed (or proven gone).
    func pull(_ delivery: Delivery, _ session: any JobQueueing, _ log: Logger, holder: String, lock held: PullLock) throws -> MoveResult {
        let job = delivery.job
        let lost = { MoveError(.leaseLost, "job \(delivery.id) is no longer this delivery's") }
        let filename: Filename
        do {
            filename = try Filename(job.filename)
        } catch {
            throw MoveError(.invalidFilename, "\(job.filename.debugDescription.prefix(200)): \(error)")
        }
        guard let root = levels?.roots[job.target] else { throw MoveError(.unknownLevel, "level '\(job.target)' is not held by this worker") }
        // A level this host's RELOCATOR_LEVELS does not name is no other host's: nobody would serve it.
        guard settings.remoteLevels.contains(job.dbLevel) else {
            let named = (settings.directories.names + settings.remoteLevels.sorted()).joined(separator: ", ")
            throw MoveError(.unknownLevel, "level '\(job.dbLevel)' is named in no RELOCATOR_LEVELS entry of this worker (it names \(named))")
        }
        let lock: ContentLock
        if let kept = held.lock {
            lock = kept
        } else {
            guard let taken = try ContentLock.tryLock(cid: job.cid, in: [root]) else {
                throw MoveError(.contentLocked, "another delivery of content \(job.cid) holds its lock in level '\(job.target)'")
            }
            held.lock = taken
            lock = taken
        }
        guard let reading = session as? any QueueReading else { throw MoveError(.levelUnavailable, "this queue lists no workers") }
        var (peers, cached) = try transferPeers(job.dbLevel, reading)
        if peers.isEmpty && cached { (peers, cached) = try transferPeers(job.dbLevel, reading, fresh: true) }
        guard !peers.isEmpty else { throw Self.noPeer(job.dbLevel) }
        // A secret of this delivery's own, recorded (its digest, with the token checked) before any
        // request: the source serves and removes only for the live delivery that knows it.
        let secret = TransferSecret.random()
        let credentials = [(TransferProtocol.deliveryHeader, job.deliveryToken), (TransferProtocol.secretHeader, secret.text),
                           (TransferProtocol.genHeader, "\(job.gen)")]

        // A file under the final name already (looked at under the content's lock, acted on only
        // once the secret is recorded).
        if case .regularFile(let size) = try root.lookup(filename) {
            guard try session.record(delivery, .transferSecret(digest: secret.digest)) else { throw lost() }
            // (A source no worker has is final there: asked of the workers serving the level now.)
            if cached { (peers, cached) = try transferPeers(job.dbLevel, reading, fresh: true) }
            return try proveFound(delivery, session, root, filename, size: size, peers, credentials, lock, log, lost)
        }

        // The secret and the worker asked first (the most recently seen), in one record. A fresh
        // pull locates the source with the `GET` of its first range; a resumed one with `HEAD`,
        // then compares the prefix it kept.
        let snapshot = placement.withLock { $0 }
        let bandwidth = snapshot?.policies[job.target]?.bandwidth.flatMap { $0 > 0 ? $0 : nil }
        let firstRange = (job.verified ?? 0) > 0 ? nil : Self.pullFirstRange
        let routed = peers[0].address
        guard try session.record(delivery, .pullStarted(secretDigest: secret.digest, route: route(to: peers[0]))) else { throw lost() }
        let source = try locate(job, &peers, cached: cached, reading, credentials, firstRange: firstRange)
        if source.client.address != routed {
            // Found on another worker than the one asked first: the route says where it comes from.
            guard try session.record(delivery, .pulling(route(of: source, among: peers))) else { throw lost() }
        }
        // Room in the target (its high watermark), reserved against every other copy into it.
        var reserved: Int64?
        if let snapshot, !(job.stage?.mayHaveCopyAtTarget ?? false),
           let wait = pullAdmission(job, size: source.size, snapshot, holder: holder, session, reserved: &reserved, log) {
            throw PullDeferred(reason: wait)
        }
        defer {
            if reserved != nil {
                do {
                    _ = try session.admit(.releaseRoom(level: job.target, holder: holder))
                } catch {
                    log.debug("cannot release the room reserved in \(job.target) (it lapses by itself): \(error)")
                }
            }
        }
        let renewal = PullRenewal(worker: self, session: session, log: log,
                                  permit: snapshot?.policies[job.target]?.maxMoves != nil ? (job.target, holder) : nil,
                                  room: reserved.map { (job.target, holder, $0) })

        // The verified prefix of an earlier delivery (fsynced and recorded) is kept when the source
        // still begins with the same bytes; only the rest is asked for. A prefix longer than the
        // source is not the source's.
        let verified = job.verified ?? 0
        let copy = try ReceivedCopy.open(in: root, cid: job.cid, gen: job.gen, filename: filename,
                                         keeping: verified <= source.size ? verified : 0, algorithm: settings.checksum, holding: lock)
        // Whatever stops the pull, the temporary file stays: the next delivery resumes from it.
        if let kept = copy.keptPrefixChecksum {
            let answer = try source.client.send("HEAD", TransferProtocol.contentPath(job.cid),
                                                headers: credentials + [(TransferProtocol.rangeHeader, TransferProtocol.rangeValue(offset: 0, length: copy.written)), (TransferProtocol.versionHeader, source.version)])
            try Self.refuseUnlessOK(answer, lost)
            if answer.header(TransferProtocol.rangeChecksumHeader) == kept.description {
                log.info("resuming a transfer after the \(copy.written) bytes verified before")
            } else {
                try copy.restart()
            }
        }
        // Smaller requests under a bandwidth limit, so that the bytes come about as they are paid.
        let chunk = Int64(bandwidth.map { min(Int64(Self.pullChunk), max(Self.pullPacingStep, $0 / 4)) } ?? Int64(Self.pullChunk))
        // The bytes of a file pulled in one range: counted once its publication is recorded (a
        // chunk of a longer file is counted as it is recorded verified, by `PullMetering`).
        var pulledWhole: Int64 = 0
        let fresh = copy.written == 0
        if fresh, let first = source.first, !first.isEmpty {
            // The first range, which came with the answer that located the source (checked there).
            if let bandwidth { pay(Int64(first.count), rate: bandwidth, level: job.target, session: session, log: log, renewal) }
            copy.beginRange()
            try first.withUnsafeBytes { try copy.receive($0) }
            copy.acceptRange()
        }
        let wholeInOne = fresh && source.size <= chunk
        if wholeInOne { pulledWhole = source.size }
        if copy.written < source.size {
            try receive(into: copy, from: source, job, credentials, chunk: chunk, bandwidth: bandwidth, renewal: renewal, lost) { written in
                // A chunk counts as verified once fsynced and recorded: a later delivery resumes after
                // it. (A file of one chunk is fsynced and recorded as a whole, next.)
                guard !wholeInOne else { return }
                try copy.sync()
                guard try session.record(delivery, .verified(written, of: source.size)) else { throw lost() }
            }
        }
        let checksum = try copy.verify(attributes: source.attributes)
        guard try session.record(delivery, .publishing(checksum, bytes: copy.written, sourceVersion: source.version)) else { throw lost() }
        if pulledWhole > 0 { ServiceMetrics.pulled(from: job.dbLevel, to: job.target, bytes: pulledWhole) }
        guard try copy.publish() else {
            throw MoveError(.destinationConflict, "\(job.target)/\(filename.value) appeared while the copy was made; both are left")
        }
        // Linked and its directory fsynced: only now may the source's side remove its copy.
        guard try session.record(delivery, .published) else { throw lost() }
        try removeSource(source.client, delivery, session, root, filename, credentials, checksum, version: source.version, lock, log, lost)
        return MoveResult(bytes: copy.written, checksum: checksum, method: .copied, foundIn: job.dbLevel)
    }

    /// A file found under the final name: a copy an earlier delivery published (perhaps stopped
    /// between the link and its record) is checked against the checksum it recorded; any other
    /// (a reversed job's, whose copy is where it goes back to) is compared with the source by hash.
    /// Equal: recorded published, its directory fsynced first, then the source removed.
    private func proveFound(_ delivery: Delivery, _ session: any JobQueueing, _ root: LevelRoot, _ filename: Filename, size: Int64,
                            _ peers: [TransferPeer], _ credentials: [(String, String)], _ lock: ContentLock, _ log: Logger,
                            _ lost: () -> MoveError) throws -> MoveResult {
        let job = delivery.job
        let conflict = MoveError(.destinationConflict, "\(job.target)/\(filename.value) exists and is neither a copy this job published nor equal to the source; both are left")
        let checksum: Checksum
        let source: PulledSource?
        let how: String
        // The source version the copy was made of (an earlier delivery recorded it with the checksum).
        var version = job.sourceVersion
        if job.stage == .publishing || job.stage == .published, let recorded = job.checksum.flatMap({ try? Checksum(parsing: $0) }) {
            guard try root.checksum(of: filename, algorithm: recorded.algorithm) == recorded else { throw conflict }
            checksum = recorded
            how = "the copy an earlier delivery published is in place"
            do {
                source = try locate(job, peers, credentials)
            } catch let error as MoveError where error.kind == .sourceMissing {
                // No worker serving the level has it: removed after an earlier proof, its answer lost.
                source = nil
            }
        } else {
            let found = try locate(job, peers, credentials)
            guard found.size == size else { throw conflict }
            if size > 0 {
                let answer = try found.client.send("HEAD", TransferProtocol.contentPath(job.cid),
                                                   headers: credentials + [(TransferProtocol.rangeHeader, TransferProtocol.rangeValue(offset: 0, length: size)), (TransferProtocol.versionHeader, found.version)])
                try Self.refuseUnlessOK(answer, lost)
                guard answer.header(TransferProtocol.rangeChecksumHeader) == (try root.checksum(of: filename, algorithm: .xxh128))?.description else {
                    throw conflict
                }
            }
            guard let own = try root.checksum(of: filename, algorithm: settings.checksum) else { throw conflict }
            checksum = own
            how = "the copy at the target is equal to the source"
            guard try session.record(delivery, .publishing(checksum, bytes: size, sourceVersion: found.version)) else { throw lost() }
            version = found.version
            source = found
        }
        if job.stage != .published {
            try root.syncDirectory(of: filename)
            guard try session.record(delivery, .published) else { throw lost() }
        }
        if let source {
            log.info("\(how); its source is removed")
            try removeSource(source.client, delivery, session, root, filename, credentials, checksum, version: version, lock, log, lost)
        } else {
            log.info("the copy an earlier delivery published is in place, and no worker serving the source level has its source")
        }
        return MoveResult(bytes: size, checksum: checksum, method: .copied, foundIn: job.dbLevel)
    }

    /// The live workers serving `level` (but this one), the most recently seen first, from the
    /// heartbeats as read within `heartbeatsKept` (each pull of many small files does not read
    /// them again), or read now when `fresh`; and whether they came from the heartbeats read before.
    func transferPeers(_ level: String, _ reading: any QueueReading, fresh: Bool = false) throws -> (peers: [TransferPeer], cached: Bool) {
        let now = ContinuousClock.now
        if !fresh, let kept = heartbeatsRead.withLock({ $0 }), now - kept.at < Self.heartbeatsKept {
            return (TransferPeer.serving(level, among: kept.beats, excluding: settings.id), true)
        }
        let beats = try reading.heartbeats()
        heartbeatsRead.withLock { $0 = (now, beats) }
        return (TransferPeer.serving(level, among: beats, excluding: settings.id), false)
    }

    /// How long the heartbeats a pull read serve the next pulls (a source's worker that cannot be
    /// reached is asked again after `pullReconnectInterval`, with them read again by then).
    static let heartbeatsKept: Duration = .milliseconds(500)

    /// `locate` among `peers`; when they come from the heartbeats read before (`cached`), an
    /// answer that is not final is asked again once of the workers serving the level now: a
    /// source none of them has (it may be on a worker that began serving since), and a refusal
    /// over TLS or for want of it (the peer may have restarted with or without a certificate since
    /// its heartbeat was read), which would count a failed attempt.
    func locate(_ job: Job, _ peers: inout [TransferPeer], cached: Bool, _ reading: any QueueReading, _ credentials: [(String, String)],
                firstRange: Int? = nil) throws -> PulledSource {
        do {
            return try locate(job, peers, credentials, firstRange: firstRange)
        } catch let error as MoveError where error.kind == .sourceMissing && cached {
            peers = try transferPeers(job.dbLevel, reading, fresh: true).peers
        } catch is TransferClient.TLSRefused where cached {
            peers = try transferPeers(job.dbLevel, reading, fresh: true).peers
        }
        return try locate(job, peers, credentials, firstRange: firstRange)
    }

    /// The live worker that has the source (`HEAD`), the most recently seen first. One answering
    /// `source_missing` is not final while another may have it: the source is missing only when
    /// every one of them says so; one that cannot be reached (or does not serve the level now)
    /// makes the move wait. One refused over TLS (`TransferClient.TLSRefused`) while none has the
    /// file and every other answered is the move's failure (`transfer_tls`), not a wait.
    ///
    /// With `firstRange`, each is asked for the file's first `firstRange` bytes (`GET`) instead:
    /// the answer says the same, and its bytes, exactly the range asked and equal to their
    /// checksum, are the copy's first (an empty file, which has no range, is asked with `HEAD`).
    func locate(_ job: Job, _ peers: [TransferPeer], _ credentials: [(String, String)], firstRange: Int? = nil) throws -> PulledSource {
        // Nobody asked is nobody saying the file is missing (the heartbeats read again may name
        // no worker: the one serving the level restarting, or cut off from Redis).
        guard !peers.isEmpty else { throw Self.noPeer(job.dbLevel) }
        var unreachable: [String] = []
        var missing: [String] = []
        var refused: [String] = []
        let lost = { MoveError(.leaseLost, "job \(job.id) is no longer this delivery's") }
        let path = TransferProtocol.contentPath(job.cid)
        for peer in peers {
            let client = TransferClient(peer: peer, signingKey: settings.transferSigningKey, trust: settings.transferTrust)
            var answer: TransferClient.Answer
            do {
                if let firstRange {
                    do {
                        answer = try client.send("GET", path, headers: credentials + [(TransferProtocol.rangeHeader, TransferProtocol.rangeValue(offset: 0, length: Int64(firstRange)))], maximumBody: firstRange)
                    } catch is TransferClient.Oversized {
                        // More than was asked: nothing of it is kept, and the range is asked again.
                        answer = try client.send("HEAD", path, headers: credentials)
                    }
                    if answer.status == 416 { answer = try client.send("HEAD", path, headers: credentials) }
                } else {
                    answer = try client.send("HEAD", path, headers: credentials)
                }
            } catch let error as TransferClient.Unreachable {
                unreachable.append("\(peer.worker): \(error)")
                continue
            } catch let error as TransferClient.TLSRefused {
                refused.append("worker \(peer.worker): \(error)")
                continue
            }
            if (200..<300).contains(answer.status) {
                guard let text = answer.header(TransferProtocol.sizeHeader), text.count <= 18, let size = Int64(text), size >= 0,
                      let version = answer.header(TransferProtocol.versionHeader) else {
                    unreachable.append("\(peer.worker) answered without the file's size or version")
                    continue
                }
                var first: [UInt8]?
                if let firstRange, answer.status == 206, size > 0 {
                    let count = min(Int64(firstRange), size)
                    if answer.body.count == count, answer.header(TransferProtocol.contentRangeHeader) == TransferProtocol.contentRange(offset: 0, length: count, size: size),
                       answer.header(TransferProtocol.rangeChecksumHeader) == ReceivedChunk.checksum(answer.body).description {
                        first = answer.body
                    }
                }
                return PulledSource(client: client, size: size, version: version,
                                    attributes: answer.header(TransferProtocol.attributesHeader).flatMap(FileAttributes.init(parsing:)),
                                    first: first)
            }
            switch answer.refusal.flatMap(TransferProtocol.Refusal.init(rawValue:)) {
            case .sourceMissing: missing.append(peer.worker)
            case .notServed, .unavailable, .wrongSignature: unreachable.append("\(peer.worker): \(answer.message)")
            default: try Self.refuseUnlessOK(answer, lost)
            }
        }
        // A worker that could not be reached may have the file and be reached over TLS as it
        // should: the move waits, counting nothing, while any is (the refusals said beside).
        if !unreachable.isEmpty {
            throw TransferClient.Unreachable(description: (unreachable + refused).joined(separator: "; ")
                                             + (missing.isEmpty ? "" : " (\(missing.joined(separator: ", ")) \(missing.count == 1 ? "has" : "have") no such file)"))
        }
        if !refused.isEmpty {
            throw TransferClient.TLSRefused(description: refused.joined(separator: "; "))
        }
        throw MoveError(.sourceMissing, "no live worker serving level '\(job.dbLevel)' has \(job.filename.prefix(200)) (asked \(missing.joined(separator: ", ")))")
    }

    /// The rest of the source, range after range, into `copy`: each range of exactly the bytes
    /// asked (`Content-Range`, length), of the same version, equal to its checksum, else asked again
    /// (`pullChunkAttempts` times in all); nothing beyond the range asked is ever written. The next
    /// range is asked (and paid for under a bandwidth limit) before the last one is read, on the
    /// same connection, so the source sends it while this side writes and records the last;
    /// `verified` is called once each range is written.
    private func receive(into copy: ReceivedCopy, from source: PulledSource, _ job: Job, _ credentials: [(String, String)], chunk: Int64,
                         bandwidth: Int64?, renewal: PullRenewal, _ lost: () -> MoveError, verified: (Int64) throws -> Void) throws {
        let stream = TransferRangeStream(client: source.client, path: TransferProtocol.contentPath(job.cid),
                                         headers: credentials + [(TransferProtocol.versionHeader, source.version)])
        // The bytes are written and hashed as they come, a piece at a time, while still in the
        // processor's cache; a range counts once it is whole and equal to its checksum.
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(min(Self.pullPiece, chunk)), alignment: 4096)
        defer { buffer.deallocate() }
        var next = copy.written
        var attempts = 0
        var problem = ""
        while copy.written < source.size {
            if cancel.isRaised { throw MoveError(.cancelled, "stopped while pulling \(job.dbLevel)/\(job.filename.prefix(200))") }
            // The range after the one read next is asked already.
            while stream.asked < 2 && next < source.size {
                let length = Self.rangeLength(at: next, chunk: chunk, size: source.size)
                if let bandwidth { pay(Int64(length), rate: bandwidth, level: job.target, session: renewal.session, log: renewal.log, renewal) }
                try stream.ask(offset: next, length: length)
                next += Int64(length)
            }
            let offset = copy.written
            let length = Self.rangeLength(at: offset, chunk: chunk, size: source.size)
            let last = offset + Int64(length) - 1
            let wrong: String
            do {
                copy.beginRange()
                let (answer, count) = try stream.next(through: buffer) { try copy.receive($0) }
                try Self.refuseUnlessOK(answer, lost)
                if let served = answer.header(TransferProtocol.versionHeader), served != source.version {
                    throw MoveError(.sourceChanged, "\(job.dbLevel)/\(job.filename.prefix(200)) changed during the transfer")
                }
                if count != length || answer.header(TransferProtocol.contentRangeHeader) != TransferProtocol.contentRange(offset: offset, length: Int64(length), size: source.size) {
                    wrong = "\(count) bytes as \(answer.header(TransferProtocol.contentRangeHeader)?.prefix(80) ?? "no range") for bytes \(offset)-\(last)"
                } else if answer.header(TransferProtocol.rangeChecksumHeader) != copy.rangeReceived().checksum.description {
                    wrong = "bytes \(offset)-\(last) arrived changed"
                } else {
                    attempts = 0
                    copy.acceptRange()
                    try verified(copy.written)
                    renewal.renew()
                    continue
                }
            } catch let error as TransferClient.Oversized {
                wrong = "\(error)"
            }
            // Asked again, with the ranges after it, on a new connection.
            problem = wrong
            attempts += 1
            guard attempts < Self.pullChunkAttempts else {
                throw MoveError(.checksumMismatch, "a range of content \(job.cid) came wrong \(Self.pullChunkAttempts) times (last: \(problem))")
            }
            stream.reset()
            next = copy.written
        }
        stream.finish()
    }

    /// No live worker serves `level` (a worker restarting, or cut off from Redis): the move waits
    /// and asks again, as for an unreachable one, counting no attempt.
    static func noPeer(_ level: String) -> TransferClient.Unreachable {
        TransferClient.Unreachable(description: "no live worker serves level '\(level)'")
    }

    /// The length of the range asked from `offset`: to the next multiple of `chunk` (after a
    /// fresh pull's first range, the rest of the first chunk), or to the end of the file. Ranges
    /// end on the same offsets whatever came first, so what a pull records verified is a whole
    /// number of chunks (or the whole file).
    static func rangeLength(at offset: Int64, chunk: Int64, size: Int64) -> Int {
        Int(min(chunk - offset % chunk, size - offset))
    }

    /// Pays `bytes` to the level's bandwidth bucket in steps of at most `pullPacingStep` (and a
    /// twentieth of a second of the rate), waiting as it says, before they are asked for.
    private func pay(_ bytes: Int64, rate: Int64, level: String, session: any JobQueueing, log: Logger, _ renewal: PullRenewal) {
        var owed = bytes
        while owed > 0 && !cancel.isRaised {
            let piece = min(owed, Self.pullPacingStep, max(1, rate / 20))
            do {
                switch try session.admit(.bandwidth(level: level, rate: rate, bytes: piece)) {
                case .wait(let wait): cancel.wait(for: wait)
                default: owed -= piece
                }
            } catch {
                log.debug("cannot reach the bandwidth limit's bucket; going on: \(error)")
                return
            }
            renewal.renew()
        }
    }

    /// Why a pull into the job's target must wait (it would rise above its high watermark), or
    /// nil; when it may go, `reserved` holds the bytes it adds, reserved in Redis against every
    /// other copy into the level until the pull ends.
    private func pullAdmission(_ job: Job, size: Int64, _ snapshot: PlacementSnapshot, holder: String, _ session: any JobQueueing,
                               reserved: inout Int64?, _ log: Logger) -> String? {
        guard snapshot.policies[job.target]?.highWater != nil, let directory = settings.directories.directory(of: job.target) else { return nil }
        var adding = size
        // An earlier delivery's temporary file holds its blocks already.
        do {
            if let bytes = try levels?.roots[job.target]?.temporarySize(cid: job.cid, gen: job.gen) { adding = max(0, adding - bytes) }
        } catch {
            log.debug("cannot look for an earlier delivery's temporary file: \(error)")
        }
        guard let report = DiskReport.usage(of: directory) else { return nil }
        let usage = Placement.Usage(report)
        guard let room = snapshot.placement.room(in: job.target, usage: usage) else { return nil }
        let others: Int64
        do {
            switch try session.admit(.room(level: job.target, holder: holder, bytes: adding, room: room, ttl: permitTTL)) {
            case .granted:
                reserved = adding
                return nil
            case .roomHeld(let held): others = held
            case .refused, .wait: others = 0
            }
        } catch {
            return "cannot reserve room in \(job.target): \(error)"
        }
        return snapshot.placement.admission(into: job.target, usage: usage, adding: adding, inFlight: others)
            ?? "\(job.target) has room for \(room) bytes, and other copies into it hold \(others)"
    }

    /// Asks the source's worker to remove its copy once proven: the source as it was copied
    /// (`version`, when known). When the source was written to since, the source's worker keeps it
    /// and this copy, of an older version, is withdrawn: removed (it must still be the copy this job
    /// published), its directory fsynced, and recorded so; the move starts again.
    private func removeSource(_ client: TransferClient, _ delivery: Delivery, _ session: any JobQueueing, _ root: LevelRoot,
                              _ filename: Filename, _ credentials: [(String, String)], _ checksum: Checksum, version: String?,
                              _ lock: ContentLock, _ log: Logger, _ lost: () -> MoveError) throws {
        let job = delivery.job
        // The copy kept is on this level as checked at start, not on a disk unmounted or swapped
        // since: only then may the source's worker remove its copy.
        try root.requireInPlace()
        var headers = credentials + [(TransferProtocol.checksumHeader, checksum.description)]
        if let version { headers.append((TransferProtocol.versionHeader, version)) }
        let answer = try client.send("POST", TransferProtocol.removePath(job.cid), headers: headers)
        // Only `version_changed` says the source is there, a newer version: any other refusal (a
        // source that disappeared or was replaced while it was hashed among them) keeps the copy.
        guard version != nil, !(200..<300).contains(answer.status),
              answer.refusal.flatMap(TransferProtocol.Refusal.init(rawValue:)) == .versionChanged else {
            try Self.refuseUnlessOK(answer, lost)
            return
        }
        let outcome = try root.removeProven(filename, checksum: checksum, holding: lock).outcome
        guard try session.record(delivery, .copyWithdrawn) else { throw lost() }
        log.warning("the source changed after it was copied: the copy at \(job.target)/\(filename.value) is withdrawn (\(outcome.rawValue)); the move starts again")
        throw MoveError(.sourceChanged, "the source's worker refused: \(answer.message); the copy at \(job.target)/\(filename.value) was withdrawn and the move starts again")
    }

    /// The move error of a refusal of the source's endpoint.
    static func refuseUnlessOK(_ answer: TransferClient.Answer, _ lost: () -> MoveError) throws {
        guard !(200..<300).contains(answer.status) else { return }
        let refusal = answer.refusal.flatMap(TransferProtocol.Refusal.init(rawValue:))
        let message = "the source's worker refused: \(answer.message)"
        switch refusal {
        case .wrongCredential, .staleDelivery, .missingCredential: throw lost()
        case .contentLocked: throw MoveError(.contentLocked, message)
        case .sourceChanged, .versionChanged: throw MoveError(.sourceChanged, message)
        case .checksumMismatch: throw MoveError(.destinationConflict, message + "; the published copy and the source differ, both are left")
        case .sourceMissing: throw MoveError(.sourceMissing, message)
        case .unsafePath: throw MoveError(.unsafePath, message)
        case .notRegularFile: throw MoveError(.notRegularFile, message)
        case .invalidFilename: throw MoveError(.invalidFilename, message)
        case .notServed, .unavailable: throw MoveError(.levelUnavailable, message)
        // The hosts' shared keys differ: a configuration to mend, not the move's fault; it waits.
        case .wrongSignature: throw MoveError(.levelUnavailable, message)
        default: throw MoveError(.ioError, message)
        }
    }

    /// Acknowledges a pulled move whose source is removed.
    private func finishPulled(_ delivery: Delivery, _ result: MoveResult, _ context: MoveContext, _ session: any JobQueueing, _ log: Logger) {
        let job = delivery.job
        retrying("acknowledge the move", log) {
            let ended = try session.complete(delivery, .moved(result.checksum, bytes: result.bytes, method: .copied, foundIn: nil))
            if ended == .done {
                ServiceMetrics.moved(from: job.dbLevel, to: job.target, method: MoveMethod.copied.rawValue, bytes: result.bytes,
                                     duration: .now - context.started)
                log.info("moved from another host", metadata: ["job.from": "\(job.dbLevel)", "job.to": "\(job.target)", "job.bytes": "\(result.bytes)"])
            } else {
                log.warning("moved, but the job was no longer this delivery's; the next delivery finds the file in place")
            }
        }
    }
}

/// Renews the move permit and the room reservation of a pull that lasts, as a local copy's hooks do.
final class PullRenewal {
    let worker: Worker
    let session: any JobQueueing
    let log: Logger
    let permit: (level: String, holder: String)?
    let room: (level: String, holder: String, bytes: Int64)?
    var renewed = ContinuousClock.now

    init(worker: Worker, session: any JobQueueing, log: Logger, permit: (level: String, holder: String)?,
         room: (level: String, holder: String, bytes: Int64)?) {
        self.worker = worker
        self.session = session
        self.log = log
        self.permit = permit
        self.room = room
    }

    func renew() {
        guard permit != nil || room != nil, ContinuousClock.now - renewed >= worker.permitTTL / 3 else { return }
        renewed = .now
        do {
            if let permit { _ = try session.admit(.permit(level: permit.level, holder: permit.holder, most: Int.max, ttl: worker.permitTTL)) }
            if let room { _ = try session.admit(.room(level: room.level, holder: room.holder, bytes: room.bytes, room: .max, ttl: worker.permitTTL)) }
        } catch {
            log.debug("cannot renew the permit or the room reserved in \(permit?.level ?? room?.level ?? ""): \(error)")
        }
    }
}
