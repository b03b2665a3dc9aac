import RelocatorCore
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// A copy of a file of another host's level, received into this host's target level in chunks:
/// written to the job's temporary file (`.relocator/tmp/<cid>-<gen>.part`), hashed as it comes,
/// fsynced chunk by chunk, read back from the device, and only then published under its final
/// name. The caller holds the content's lock in the target level for the copy's whole life (a
/// temporary file is only ever used by the delivery holding the lock).
///
/// A delivery that stopped (a kill, a lost lease) leaves its temporary file: the next one keeps
/// the prefix the job recorded as verified (fsynced and recorded), hashing it again locally, and
/// asks the source only for the rest.
public final class ReceivedCopy: @unchecked Sendable {
    let root: LevelRoot
    let part: LevelRoot.OpenFile
    public let filename: Filename
    public let algorithm: ChecksumAlgorithm
    private(set) var whole: RunningHash
    /// Bytes written so far (and hashed into `whole`).
    public private(set) var written: Int64
    /// The xxh128 of the prefix kept from an earlier delivery (nil when none was kept).
    public let keptPrefixChecksum: Checksum?

    private init(root: LevelRoot, part: LevelRoot.OpenFile, filename: Filename, algorithm: ChecksumAlgorithm, whole: RunningHash,
                 written: Int64, keptPrefixChecksum: Checksum?) {
        self.root = root
        self.part = part
        self.filename = filename
        self.algorithm = algorithm
        self.whole = whole
        self.written = written
        self.keptPrefixChecksum = keptPrefixChecksum
    }

    /// Opens (or creates) the job's temporary file in `root`, keeping at most its first `keep`
    /// bytes — those an earlier delivery recorded as verified — and hashing them again.
    public static func open(in root: LevelRoot, cid: Int64, gen: Int64, filename: Filename, keeping keep: Int64,
                            algorithm: ChecksumAlgorithm, holding lock: ContentLock) throws -> ReceivedCopy {
        precondition(lock.cid == cid, "the content's own lock")
        try root.requireInPlace()
        let name = PartName(cid: cid, gen: gen)
        let directory = try root.temporaryDirectory()
        let entry = LevelRoot.Entry(root: root, directory: directory, directoryPath: ReservedDirectory.temporaryPath, name: name.fileName)
        let output: Descriptor
        switch Linux.openAt(directory.fd, name.fileName, flags: O_RDWR | O_CREAT | O_NOFOLLOW, mode: 0o600) {
        case .success(let fd): output = Descriptor(fd, display: entry.display)
        case .failure(.tooManySymbolicLinkLevels): throw MoveError.symbolicLink(entry.display)
        case .failure(let error): throw MoveError.system("cannot create", entry.display, error)
        }
        let status = try output.stat()
        guard status.isRegularFile else { throw MoveError(.ioError, "\(entry.display) is \(status.typeDescription)") }
        let kept = max(0, min(keep, status.size))
        if case .failure(let error) = Linux.call({ ftruncate(output.fd.rawValue, off_t(kept)) }) {
            throw MoveError.system("cannot truncate", entry.display, error)
        }
        let whole = RunningHash(algorithm)
        var prefix: Checksum?
        if kept > 0 {
            let local = RunningHash(.xxh128)
            let buffers = ChunkBuffers(chunkSize: 1 << 20)
            var offset: Int64 = 0
            while offset < kept {
                let want = Int(min(Int64(buffers[0].count), kept - offset))
                let count = try output.read(into: UnsafeMutableRawBufferPointer(rebasing: buffers[0][0..<want]), at: offset)
                guard count > 0 else { break }
                let chunk = UnsafeRawBufferPointer(rebasing: buffers[0][0..<count])
                whole.update(chunk)
                local.update(chunk)
                offset += Int64(count)
            }
            guard offset == kept else { throw MoveError(.ioError, "\(entry.display) ended at \(offset) of the \(kept) bytes kept") }
            prefix = local.finalize()
        }
        let open = LevelRoot.OpenFile(entry: entry, file: output, identity: FileIdentity(try output.stat()))
        return ReceivedCopy(root: root, part: open, filename: filename, algorithm: algorithm, whole: whole, written: kept, keptPrefixChecksum: prefix)
    }

    /// Starts again from the first byte (the prefix kept is not the source's).
    public func restart() throws {
        if case .failure(let error) = Linux.call({ ftruncate(part.file.fd.rawValue, 0) }) {
            throw MoveError.system("cannot truncate", part.entry.display, error)
        }
        whole.reset()
        written = 0
        range = nil
    }

    /// Writes the next chunk at the end of what was written.
    public func append(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try append($0) }
    }

    /// Writes the next chunk at the end of what was written.
    public func append(_ raw: UnsafeRawBufferPointer) throws {
        try part.file.write(raw, at: written)
        whole.update(raw)
        written += Int64(raw.count)
    }

    /// The range being received: written piece by piece after what was written, hashed as it
    /// comes (its own xxh128, and the whole file's hash so far carried on), and counted only once
    /// it is accepted.
    private var range: (bytes: Int64, hash: RunningHash, whole: RunningHash)?

    /// Begins a range at the end of what was written (one begun before and not accepted is
    /// forgotten: its bytes are written over).
    public func beginRange() {
        range = (0, RunningHash(.xxh128), whole.copy())
    }

    /// Writes the next piece of the range begun.
    public func receive(_ piece: UnsafeRawBufferPointer) throws {
        guard var current = range else { preconditionFailure("a range is begun before it is received") }
        try part.file.write(piece, at: written + current.bytes)
        current.hash.update(piece)
        current.whole.update(piece)
        current.bytes += Int64(piece.count)
        range = current
    }

    /// The range received so far: its length and xxh128.
    public func rangeReceived() -> (bytes: Int64, checksum: Checksum) {
        guard let current = range else { preconditionFailure("a range is begun before it is checked") }
        return (current.bytes, current.hash.finalize())
    }

    /// Counts the range received as written (it was checked equal to what the source sent).
    public func acceptRange() {
        guard let current = range else { preconditionFailure("a range is begun before it is accepted") }
        whole = current.whole
        written += current.bytes
        range = nil
    }

    /// fsyncs what was written: from here on it survives a crash of this host.
    public func sync() throws { try part.entry.root.syncing { try part.file.sync() } }

    /// The checksum of everything written, once read back from the device equal to it (the
    /// pages dropped first); `checksum_mismatch` otherwise. The file takes the source's mode and
    /// times (0644 and now without them) and is fsynced with them.
    public func verify(attributes: FileAttributes? = nil) throws -> Checksum {
        let inFlight = whole.finalize()
        let mode = mode_t(attributes?.mode ?? 0o644)
        if case .failure(let error) = Linux.call({ fchmod(part.file.fd.rawValue, mode) }) {
            throw MoveError.system("cannot set the mode of", part.entry.display, error)
        }
        try part.entry.root.syncing { try part.file.sync() }
        _ = posix_fadvise(part.file.fd.rawValue, 0, 0, POSIX_FADV_DONTNEED)  // advice only
        // Read and hashed a piece at a time on this thread (no hand-over to another thread per
        // piece, which costs more than the hashing on a busy machine).
        // (Buffers no larger than the file: a small one's neither maps nor unmaps memory.)
        let buffers = ChunkBuffers(chunkSize: ChunkBuffers.inlineHashing)
        buffers.fit(written)
        let (readBack, size) = try part.file.hash(algorithm, buffers: buffers)
        guard size == written, readBack == inFlight else {
            throw MoveError(.checksumMismatch, "\(part.entry.display) reads back as \(readBack) (\(size) bytes), not as written (\(inFlight), \(written) bytes)")
        }
        // The times last: the read-back would have changed the access time.
        if let attributes {
            var times = [timespec(tv_sec: Int(attributes.accessed.seconds), tv_nsec: Int(attributes.accessed.nanoseconds)),
                         timespec(tv_sec: Int(attributes.modified.seconds), tv_nsec: Int(attributes.modified.nanoseconds))]
            if case .failure(let error) = Linux.call({ futimens(part.file.fd.rawValue, &times) }) {
                throw MoveError.system("cannot set the times of", part.entry.display, error)
            }
            try part.entry.root.syncing { try part.file.sync() }
        }
        return inFlight
    }

    /// Publishes the verified copy under its final name (never replacing one; its directories
    /// made durably), fsyncs that directory, then removes the temporary name. False when the final
    /// name already holds a file (nothing published).
    public func publish() throws -> Bool {
        try root.requireInPlace()
        guard let target = try root.entry(filename, create: true) else {
            throw MoveError(.ioError, "cannot create the directories of \(root.display(filename.value))")
        }
        guard try part.entry.names(part.identity) else {
            throw MoveError(.ioError, "\(part.entry.display) was replaced while it was written; the copy starts again")
        }
        switch Linux.link(part.file.fd, into: target.directory.fd, as: target.name) {
        case .success: break
        case .failure(.fileExists): return false
        case .failure(let error): throw MoveError.system("cannot publish", target.display, error)
        }
        try root.sync(target.directory)
        discard()
        return true
    }

    /// Removes the temporary name while it still names this copy (best effort: what is left is
    /// the next delivery's, or the sweep's, under the lock).
    public func discard() {
        do {
            if try part.entry.names(part.identity) { _ = Linux.unlink(part.entry.directory.fd, part.entry.name) }
        } catch {
            // Left for the next delivery.
        }
    }
}

/// A range received from another host.
public enum ReceivedChunk {
    /// Its xxh128, as the source's endpoint computes it for the range it sends.
    public static func checksum(_ bytes: [UInt8]) -> Checksum {
        bytes.withUnsafeBytes { checksum($0) }
    }

    /// Its xxh128, as the source's endpoint computes it for the range it sends.
    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> Checksum {
        let hash = RunningHash(.xxh128)
        hash.update(bytes)
        return hash.finalize()
    }
}
