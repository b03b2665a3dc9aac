import RelocatorCore
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// A regular file of a level, opened (beneath the level, without following a link, as every
/// name) to serve its bytes to another worker's transfer.
public final class ServedFile: @unchecked Sendable {
    let open: LevelRoot.OpenFile

    init(_ open: LevelRoot.OpenFile) {
        self.open = open
    }

    /// How many bytes a range is read and hashed in at a time.
    static let piece = 256 << 10

    /// Its size when it was opened.
    public var size: Int64 { open.identity.size }

    /// The file's version: device, inode, size, modification and change times when it was opened.
    /// Every range of one transfer must come from one version (a source written to meanwhile is
    /// `source_changed`).
    public var version: String { Self.version(of: open.identity) }

    static func version(of id: FileIdentity) -> String {
        "\(id.device)-\(id.inode)-\(id.size)-\(id.modified.tv_sec).\(id.modified.tv_nsec)-\(id.changed.tv_sec).\(id.changed.tv_nsec)"
    }

    /// True when the version opened was made at least `interval` before now, by this host's
    /// clock (`settled(changed:now:interval:)`).
    public func changedBefore(_ interval: Duration) -> Bool {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Self.settled(changed: open.identity.changed, now: now, interval: interval)
    }

    /// True when a file whose change time is `changed` last changed at least `interval` before
    /// `now` — a second more when that time has no fraction of a second (a file system that keeps
    /// whole seconds, as ext4 with small inodes): a write after that, seen or not, changes the
    /// version's times even where they step by whole clock ticks or seconds.
    static func settled(changed: timespec, now: timespec, interval: Duration) -> Bool {
        var (seconds, attoseconds) = interval.components
        if changed.tv_nsec == 0 {
            guard seconds < Int64.max else { return false }
            seconds += 1
        }
        // (A change time from the far future makes no deadline: never.)
        guard seconds >= 0, Int64(changed.tv_sec) < Int64.max - seconds - 1 else { return false }
        var deadline = (seconds: Int64(changed.tv_sec) + seconds, nanoseconds: Int64(changed.tv_nsec) + attoseconds / 1_000_000_000)
        if deadline.nanoseconds >= 1_000_000_000 {
            deadline.seconds += 1
            deadline.nanoseconds -= 1_000_000_000
        }
        return (Int64(now.tv_sec), Int64(now.tv_nsec)) >= deadline
    }

    /// The file's mode and access and modification times, now.
    public func attributes() throws -> FileAttributes {
        let status = try open.file.stat()
        return FileAttributes(mode: UInt32(status.mode.permissions.rawValue) & 0o7777,
                              accessed: (Int64(status.st_atim.tv_sec), Int64(status.st_atim.tv_nsec)),
                              modified: (Int64(status.st_mtim.tv_sec), Int64(status.st_mtim.tv_nsec)))
    }

    /// Up to `count` bytes from `offset` (fewer only at the end of the file), with their checksum;
    /// `source_changed` when the file is no longer the version opened once they are read.
    public func read(at offset: Int64, count: Int, algorithm: ChecksumAlgorithm) throws -> (bytes: [UInt8], checksum: Checksum) {
        precondition(offset >= 0 && count >= 0, "a range is checked before it is read")
        var checksum: Checksum?
        let bytes = try [UInt8](unsafeUninitializedCapacity: count) { buffer, filled in
            (filled, checksum) = try read(at: offset, into: UnsafeMutableRawBufferPointer(buffer), algorithm: algorithm)
        }
        return (bytes, checksum!)
    }

    /// Bytes from `offset` into `buffer` (fewer than it holds only at the end of the file): how many,
    /// and their checksum; `source_changed` when the file is no longer the version opened once
    /// they are read.
    /// With `whole`, the bytes are hashed into it too (it holds the file's bytes before `offset`).
    public func read(at offset: Int64, into buffer: UnsafeMutableRawBufferPointer, algorithm: ChecksumAlgorithm,
                     continuing whole: WholeFileHash? = nil) throws -> (count: Int, checksum: Checksum) {
        precondition(offset >= 0, "a range is checked before it is read")
        // Hashed piece by piece as read, while each piece is still in the processor's cache.
        let hash = RunningHash(algorithm)
        var filled = 0
        while filled < buffer.count {
            let piece = UnsafeMutableRawBufferPointer(rebasing: buffer[filled..<min(buffer.count, filled + Self.piece)])
            let count = try open.file.read(into: piece, at: offset + Int64(filled))
            hash.update(UnsafeRawBufferPointer(rebasing: piece[0..<count]))
            whole?.running.update(UnsafeRawBufferPointer(rebasing: piece[0..<count]))
            filled += count
            if count < piece.count { break }
        }
        try open.requireUnchanged()
        return (filled, hash.finalize())
    }
}

/// The xxh128 of a served file's bytes from its first, carried on range after range as they are
/// served in order to one delivery (`ServedFile.read(…continuing:)`).
public final class WholeFileHash: @unchecked Sendable {
    let running = RunningHash(.xxh128)
    /// The wall clock's lead on the monotonic clock when the hash began (ns). The settle rule that
    /// let it begin (`ServedFile.settled`) holds while the wall clock runs on: a step back of it
    /// could give a write made later the change time the version already has.
    let clockLead: Int64

    public init() {
        clockLead = Self.wallClockLead()
    }

    /// For tests: a hash begun with the wall clock `lead` nanoseconds ahead of the monotonic one.
    public init(clockLead lead: Int64) {
        clockLead = lead
    }

    /// The hash of every byte passed so far.
    public func checksum() -> Checksum { running.finalize() }

    /// False once the wall clock has stepped (by more than 10 ms either way) since the hash began:
    /// the version it covers may then hide a later write, and the hash is not to be trusted.
    public var clockHeld: Bool { Self.wallClockLead().subtractingReportingOverflow(clockLead).partialValue.magnitude <= 10_000_000 }

    /// CLOCK_REALTIME − CLOCK_MONOTONIC in nanoseconds: constant while no one steps the wall clock
    /// (NTP's slewing moves both alike). Read between two readings of the wall clock, again while
    /// they are more than 1 ms apart (the thread was preempted between them).
    static func wallClockLead() -> Int64 {
        func nanoseconds(_ time: timespec) -> Int64 {
            Int64(time.tv_sec).saturatingMultiply(1_000_000_000).saturatingAdd(Int64(time.tv_nsec))
        }
        var lead: Int64 = 0
        for _ in 0..<5 {
            var before = timespec(), monotonic = timespec(), after = timespec()
            clock_gettime(CLOCK_REALTIME, &before)
            clock_gettime(CLOCK_MONOTONIC, &monotonic)
            clock_gettime(CLOCK_REALTIME, &after)
            let wall = nanoseconds(before), spread = nanoseconds(after).saturatingSubtract(wall)
            lead = wall.saturatingAdd(spread / 2).saturatingSubtract(nanoseconds(monotonic))
            if spread >= 0 && spread < 1_000_000 { break }
        }
        return lead
    }
}

/// A source's checksum as its own endpoint hashed it while serving it, whole and in order, to
/// the delivery that asks for its removal; and the version it was (every range of it read from
/// that one version, each checked unchanged once read).
public struct ServedChecksum: Sendable, Equatable {
    public var version: String
    public var checksum: Checksum

    public init(version: String, checksum: Checksum) {
        self.version = version
        self.checksum = checksum
    }
}

extension ServedFile {
    /// The xxh128 of the file's first `length` bytes, read here (a resumed transfer compares it
    /// with its own prefix instead of receiving the prefix again); `source_changed` when the file
    /// is no longer the version opened, or shorter.
    public func prefixChecksum(_ length: Int64) throws -> Checksum {
        let hash = RunningHash(.xxh128)
        let buffers = ChunkBuffers(chunkSize: 1 << 20)
        var offset: Int64 = 0
        while offset < length {
            let want = Int(min(Int64(buffers[0].count), length - offset))
            let count = try open.file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffers[0][0..<want]), at: offset)
            guard count > 0 else { break }
            hash.update(UnsafeRawBufferPointer(rebasing: buffers[0][0..<count]))
            offset += Int64(count)
        }
        try open.requireUnchanged()
        guard offset == length else { throw MoveError(.sourceChanged, "\(open.entry.display) has fewer than \(length) bytes") }
        return hash.finalize()
    }
}

extension LevelRoot {
    /// `filename` of this level opened to serve it; nil when there is no such file. A link on its
    /// way is `unsafe_path`, anything but a regular file `not_regular_file`; a level no longer in
    /// place `level_unavailable`.
    public func openForTransfer(_ filename: Filename) throws -> ServedFile? {
        try requireInPlace()
        guard let entry = try entry(filename, create: false), let open = try entry.openRegularFile() else { return nil }
        return ServedFile(open)
    }

    /// fsyncs the directory of `filename` (a copy published by a delivery that stopped before it
    /// recorded the publication: its link is made durable before it is recorded).
    public func syncDirectory(of filename: Filename) throws {
        try requireInPlace()
        guard let entry = try entry(filename, create: false) else {
            throw MoveError(.ioError, "the directory of \(display(filename.value)) is gone")
        }
        try sync(entry.directory)
    }

    /// The hash `removeProven` compared with the proof.
    public enum SourceHash: String, Sendable, Equatable {
        /// Read and hashed at the removal.
        case read
        /// The one this host's endpoint made as it served the file whole (`ServedChecksum`).
        case served
    }

    /// The file systems whose change times are this host's own: a served hash is taken only for a
    /// file on one of them (a network file system's times come from another clock, or in whole
    /// seconds, and may not tell a write made since).
    static let localTimeFileSystems: Set<Int> = [Linux.tmpfsMagic, Linux.ext4Magic, Linux.xfsMagic, Linux.btrfsMagic]

    /// What `removeProven` did.
    public enum ProvenRemoval: String, Sendable, Equatable {
        /// The file was hashed, found equal to the proof, unchanged, and removed; its directory fsynced.
        case removed
        /// There was no such file (a removal whose answer was lost, asked again): nothing to do.
        case alreadyGone = "already_gone"
    }

    /// Removes this level's `filename` once its copy elsewhere is proven: only when, under the
    /// content's lock, its own hash equals `checksum` (the copy's, as the copy's delivery recorded
    /// it) and the file is unchanged since it was hashed, its name and directory still the ones
    /// hashed. Then its directory is fsynced. A difference is `checksum_mismatch`, a change
    /// `source_changed`: nothing is removed.
    ///
    /// `served`: the file's hash as this host's endpoint made it while serving the file whole to
    /// the copy's delivery. It stands for the file's own hash while the file is still that version
    /// (device, inode, size, modification and change times) on a file system whose times are this
    /// host's (`localTimeFileSystems`) — the trust a local move places in its source between its
    /// hash and its removal; otherwise the file is read and hashed here. Returns what was done and
    /// which hash was compared (nil: no file).
    public func removeProven(_ filename: Filename, checksum: Checksum, holding lock: ContentLock,
                             served: ServedChecksum? = nil, chunkSize: Int = 256 << 10) throws -> (outcome: ProvenRemoval, hash: SourceHash?) {
        try requireInPlace()
        guard let entry = try entry(filename, create: false), let source = try entry.openRegularFile() else { return (.alreadyGone, nil) }
        let own: Checksum
        let hash: SourceHash
        if let served, served.checksum.algorithm == checksum.algorithm, served.version == ServedFile.version(of: source.identity),
           let type = Linux.fileSystemType(source.file.fd), Self.localTimeFileSystems.contains(type) {
            own = served.checksum
            hash = .served
        } else {
            hash = .read
            let buffers = ChunkBuffers(chunkSize: chunkSize)
            buffers.fit(source.identity.size)
            (own, _) = try source.file.hash(checksum.algorithm, buffers: buffers)
        }
        guard own == checksum else {
            throw MoveError(.checksumMismatch, "\(entry.display) hashes to \(own), not to the copy's \(checksum); it is kept")
        }
        try source.requireUnchanged()
        guard try stillResolves(Filename.components(of: entry.directoryPath), to: entry.directory) else {
            throw MoveError(.sourceChanged, "the directory of \(entry.display) was moved or replaced while it was hashed; it is kept")
        }
        try requireInPlace()
        // Unlinked, then its directory fsynced: the removal is durable before it is confirmed.
        try entry.remove()
        return (.removed, hash)
    }
}
