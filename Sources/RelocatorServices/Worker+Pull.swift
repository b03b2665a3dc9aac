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

    /// True when this worker pulls `job`'s file: it serves transfers, holds the target level and
    /// has no directory for the source level (another host's).
    func pullsFromAnotherHost(_ job: Job) -> Bool {
        settings.transfer != nil && levels != nil && settings.directories.directory(of: job.dbLevel) == nil
            && settings.directories.directory(of: job.target) != nil
    }

    /// Pulls the delivery's file, publishes it, has the source removed, and ends the delivery.
    func pullAndEnd(_ delivery: Delivery, _ session: any JobQueueing, _ context: MoveContext, _ log: Logger) {
        do {
            let result = try pull(delivery, session, log)
            finishPulled(delivery, result, context, session, log)
        } catch let error as MoveError {
            if error.kind == .levelUnavailable { checkLevels() }
            report(delivery, error, context, session, log)
        } catch let error as TransferClient.Unreachable {
            // A network problem is not the move's: the job waits, counting no attempt.
            report(delivery, MoveError(.levelUnavailable, "the source's worker cannot be reached: \(error)"), context, session, log)
        } catch {
            report(delivery, MoveError(.ioError, "cannot record the move in Redis: \(error)"), context, session, log)
        }
    }

    /// The steps of a pull, under the content's lock in the target level. Returns the result of a
    /// move whose source is removed (or proven gone).
    func pull(_ delivery: Delivery, _ session: any JobQueueing, _ log: Logger) throws -> MoveResult {
        let job = delivery.job
        let lost = { MoveError(.leaseLost, "job \(delivery.id) is no longer this delivery's") }
        let filename: Filename
        do {
            filename = try Filename(job.filename)
        } catch {
            throw MoveError(.invalidFilename, "\(job.filename.debugDescription.prefix(200)): \(error)")
        }
        guard let root = levels?.roots[job.target] else { throw MoveError(.unknownLevel, "level '\(job.target)' is not held by this worker") }
        guard let lock = try ContentLock.tryLock(cid: job.cid, in: [root]) else {
            throw MoveError(.contentLocked, "another delivery of content \(job.cid) holds its lock in level '\(job.target)'")
        }
        defer { lock.release() }
        guard let reading = session as? any QueueReading else { throw MoveError(.levelUnavailable, "this queue lists no workers") }
        guard let peer = TransferPeer.serving(job.dbLevel, among: try reading.heartbeats(), excluding: settings.id).first else {
            throw MoveError(.levelUnavailable, "no live worker serves level '\(job.dbLevel)'; the move waits for one")
        }
        let client = TransferClient(address: peer.address)
        // A secret of this delivery's own, recorded (its digest, with the token checked) before any
        // request: the source serves and removes only for the live delivery that knows it.
        let secret = TransferSecret.random()
        guard try session.record(delivery, .transferSecret(digest: secret.digest)) else { throw lost() }
        let credentials = [(TransferProtocol.deliveryHeader, job.deliveryToken), (TransferProtocol.secretHeader, secret.text),
                           (TransferProtocol.genHeader, "\(job.gen)")]
        let algorithm = (job.checksum.flatMap { try? Checksum(parsing: $0) })?.algorithm ?? .xxh128

        // Published by an earlier delivery (perhaps stopped between the link and its record):
        // checked against the checksum it recorded, recorded published, then proven.
        if case .regularFile(let size) = try root.lookup(filename) {
            guard job.stage == .publishing || job.stage == .published, let recorded = job.checksum.flatMap({ try? Checksum(parsing: $0) }),
                  try root.checksum(of: filename, algorithm: recorded.algorithm) == recorded else {
                throw MoveError(.destinationConflict, "\(job.target)/\(filename.value) exists and is not a copy this job published; both are left")
            }
            if job.stage != .published {
                try root.syncDirectory(of: filename)
                guard try session.record(delivery, .published) else { throw lost() }
            }
            log.info("the copy an earlier delivery published is in place; its source is removed")
            try removeSource(client, job, credentials, recorded, lost)
            return MoveResult(bytes: size, checksum: recorded, method: .copied, foundIn: job.dbLevel)
        }

        // The verified prefix of an earlier delivery (fsynced and recorded) is kept when the source
        // still begins with the same bytes; only the rest is asked for.
        let copy = try ReceivedCopy.open(in: root, cid: job.cid, gen: job.gen, filename: filename, keeping: job.verified ?? 0,
                                         algorithm: algorithm, holding: lock)
        // Whatever stops the pull, the temporary file stays: the next delivery resumes from it.
        var version: String?
        if let kept = copy.keptPrefixChecksum {
            let answer = try client.send("HEAD", TransferProtocol.contentPath(job.cid), headers: credentials + [("Range", "bytes=0-\(copy.written - 1)")])
            try Self.refuseUnlessOK(answer, lost)
            if answer.header(TransferProtocol.rangeChecksumHeader) == kept.description {
                version = answer.header(TransferProtocol.versionHeader)
                log.info("resuming a transfer after the \(copy.written) bytes verified before")
            } else {
                try copy.restart()
            }
        }
        // The source's size, known from the first answer on.
        var size: Int64 = -1
        while size < 0 || copy.written < size {
            if cancel.isRaised { throw MoveError(.cancelled, "stopped while pulling \(job.dbLevel)/\(filename.value)") }
            var headers = credentials + [("Range", "bytes=\(copy.written)-\(copy.written + Int64(Self.pullChunk) - 1)")]
            if let version { headers.append((TransferProtocol.versionHeader, version)) }
            let answer = try pullChunk(client, job, headers, lost)
            guard let total = answer.header(TransferProtocol.sizeHeader).flatMap({ Int64($0) }), total >= 0,
                  let served = answer.header(TransferProtocol.versionHeader) else {
                throw MoveError(.ioError, "\(peer.address) answered without the file's size or version")
            }
            if let version, version != served { throw MoveError(.sourceChanged, "\(job.dbLevel)/\(filename.value) changed during the transfer") }
            version = served
            size = total
            guard answer.header("content-range")?.hasPrefix("bytes \(copy.written)-") == true || (total == 0 && answer.status == 416) else {
                throw MoveError(.ioError, "\(peer.address) answered another range than asked (\(answer.header("content-range") ?? "none"))")
            }
            if total == 0 { break }
            try copy.append(answer.body)
            // A chunk counts as verified once fsynced and recorded: a later delivery resumes after it.
            try copy.sync()
            guard try session.record(delivery, .verified(copy.written, of: total)) else { throw lost() }
        }
        let checksum = try copy.verify()
        guard try session.record(delivery, .publishing(checksum, bytes: copy.written)) else { throw lost() }
        guard try copy.publish() else {
            throw MoveError(.destinationConflict, "\(job.target)/\(filename.value) appeared while the copy was made; both are left")
        }
        // Linked and its directory fsynced: only now may the source's side remove its copy.
        guard try session.record(delivery, .published) else { throw lost() }
        try removeSource(client, job, credentials, checksum, lost)
        return MoveResult(bytes: copy.written, checksum: checksum, method: .copied, foundIn: job.dbLevel)
    }

    /// One range, checked against its checksum; asked again (up to three times) when the bytes
    /// came changed on the way.
    private func pullChunk(_ client: TransferClient, _ job: Job, _ headers: [(String, String)], _ lost: () -> MoveError) throws -> TransferClient.Answer {
        var attempts = 0
        while true {
            attempts += 1
            let answer = try client.send("GET", TransferProtocol.contentPath(job.cid), headers: headers)
            if answer.status == 416 { return answer }
            try Self.refuseUnlessOK(answer, lost)
            let own = ReceivedChunk.checksum(answer.body)
            if answer.header(TransferProtocol.rangeChecksumHeader) == own.description { return answer }
            guard attempts < 3 else { throw MoveError(.checksumMismatch, "a range of content \(job.cid) arrived changed \(attempts) times") }
        }
    }

    /// Asks the source's worker to remove its copy once proven.
    private func removeSource(_ client: TransferClient, _ job: Job, _ credentials: [(String, String)], _ checksum: Checksum,
                              _ lost: () -> MoveError) throws {
        let answer = try client.send("POST", TransferProtocol.removePath(job.cid), headers: credentials + [(TransferProtocol.checksumHeader, checksum.description)])
        try Self.refuseUnlessOK(answer, lost)
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
