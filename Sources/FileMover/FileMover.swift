import Crypto
import Dispatch
import RelocatorCore
#if canImport(Glibc)
import Glibc
#endif

/// One move: `<sourceDirectory>/<filename>` to `<targetDirectory>/<filename>`.
public struct MoveRequest: Sendable {
    public var filename: Filename
    public var sourceDirectory: String
    public var targetDirectory: String
    /// The other levels' directories, searched when the file is not in `sourceDirectory`.
    public var otherDirectories: [String]
    /// Names this job's temporary file: `.<name>.relocator-<cid>-<gen>.part`.
    public var cid: Int64
    public var gen: Int64
    /// The checksum a previous delivery recorded before publishing the file, if any.
    public var expectedChecksum: String?
    /// A temporary file an earlier delivery of this content's job recorded (maybe in another
    /// level's directory, if the job was re-aimed since): removed before this move starts.
    public var stalePart: String?

    public init(filename: Filename, sourceDirectory: String, targetDirectory: String, otherDirectories: [String] = [],
                cid: Int64, gen: Int64, expectedChecksum: String? = nil, stalePart: String? = nil) {
        self.stalePart = stalePart
        self.filename = filename
        self.sourceDirectory = sourceDirectory
        self.targetDirectory = targetDirectory
        self.otherDirectories = otherDirectories
        self.cid = cid
        self.gen = gen
        self.expectedChecksum = expectedChecksum
    }
}

public struct MoveResult: Sendable, Equatable {
    public enum Method: String, Sendable {
        /// Same filesystem: the name moved, the bytes could not change.
        case renamed
        /// Across filesystems: copied, read back from the device and verified.
        case copied
        /// A previous delivery had already published the file; it was verified (and a remaining
        /// identical source removed).
        case alreadyInPlace = "already_in_place"
    }

    public var bytes: Int64
    /// SHA-256, lower-case hex.
    public var checksum: String
    public var method: Method

    public init(bytes: Int64, checksum: String, method: Method) {
        self.bytes = bytes
        self.checksum = checksum
        self.method = method
    }
}

/// Faults a test can inject; none in normal runs.
public struct MoveFaults: Sendable {
    /// Called after each step; may throw (or end the process) to simulate a crash there.
    public var onStep: (@Sendable (MoveStep) throws -> Void)?
    /// Asked once per copy after the fsync: true flips one byte of the temporary file before it is
    /// read back, as a failing device would.
    public var corruptBeforeReadBack: (@Sendable () -> Bool)?

    public init(onStep: (@Sendable (MoveStep) throws -> Void)? = nil, corruptBeforeReadBack: (@Sendable () -> Bool)? = nil) {
        self.onStep = onStep
        self.corruptBeforeReadBack = corruptBeforeReadBack
    }
}

/// The steps of a move, reported to `MoveFaults.onStep` (fault injection in tests).
public enum MoveStep: String, Sendable, CaseIterable {
    case copied, synced, verified, published, targetDirectorySynced, sourceRemoved, sourceDirectorySynced
}

/// The safe move of DESIGN.md. A file is never deleted unless an identical, verified copy exists at
/// its new place; a delivery of the same job again after a crash at any step finishes the move.
public struct FileMover: Sendable {
    /// Bytes per read and write.
    public var chunkSize: Int
    /// Test hooks; nil in normal runs.
    public var faults: MoveFaults?

    public init(chunkSize: Int = 1 << 20, faults: MoveFaults? = nil) {
        self.chunkSize = chunkSize
        self.faults = faults
    }

    /// The temporary file of a job: `.<name>.relocator-<cid>-<gen>.part` beside the final name.
    public static func partPath(_ request: MoveRequest) -> String {
        let destination = request.targetDirectory + "/" + request.filename.value
        let slash = destination.lastIndex(of: "/")!
        return String(destination[..<slash]) + "/.\(request.filename.baseName).relocator-\(request.cid)-\(request.gen).part"
    }

    /// Moves the file.
    /// - Parameters:
    ///   - beforeCopy: called with the temporary file's path before it is created (the worker records
    ///     it in the job, so that a later delivery removes it even if the job was re-aimed).
    ///   - beforePublish: called with the verified checksum and size before the file appears under
    ///     its final name (the worker records them in the job, so a later delivery can check).
    ///   - shouldStop: polled between chunks; true cancels the copy (the temporary file is removed).
    public func move(_ request: MoveRequest, beforeCopy: (String) throws -> Void = { _ in },
                     beforePublish: (String, Int64) throws -> Void = { _, _ in },
                     shouldStop: () -> Bool = { false }) throws -> MoveResult {
        let relative = request.filename.value
        let destination = join(request.targetDirectory, relative)
        let destinationDirectory = parent(of: destination)

        guard request.sourceDirectory != request.targetDirectory else {
            throw MoveError(.invalidFilename, "the source and target level share the directory \(request.targetDirectory); nothing to move")
        }
        try requireDirectory(request.targetDirectory)
        try refuseSymlinkedDirectories(base: request.targetDirectory, relative: relative)
        try refuseSymlinkedDirectories(base: request.sourceDirectory, relative: relative)
        // Temporary files of earlier deliveries: removed, the copy restarts.
        for part in [request.stalePart, Self.partPath(request)].compactMap({ $0 }) where part.hasSuffix(".part") {
            if unlink(part) != 0 && errno != ENOENT { throw MoveError.system("cannot remove the stale", part, errno: errno) }
        }

        var source = join(request.sourceDirectory, relative)
        var sourceInfo = try lstatIfPresent(source)
        let destinationInfo = try lstatIfPresent(destination)
        if let destinationInfo, !isRegular(destinationInfo) {
            throw MoveError(.destinationConflict, "\(destination) exists and is not a regular file")
        }

        if sourceInfo == nil {
            if destinationInfo != nil {
                // Published by an earlier delivery whose source is gone: check it is what was verified.
                let (checksum, bytes) = try hashFile(at: destination)
                if let expected = request.expectedChecksum, expected != checksum {
                    throw MoveError(.destinationConflict, "\(destination) does not match the checksum recorded for this job and the source is gone; left untouched")
                }
                return MoveResult(bytes: bytes, checksum: checksum, method: .alreadyInPlace)
            }
            // Not where the database says: look on the other levels' disks.
            for directory in request.otherDirectories where directory != request.targetDirectory {
                let candidate = join(directory, relative)
                if let info = try lstatIfPresent(candidate) {
                    source = candidate
                    sourceInfo = info
                    break
                }
            }
            guard sourceInfo != nil else {
                throw MoveError(.sourceMissing, "\(relative) is on no level's disk (looked in \(([request.sourceDirectory] + request.otherDirectories).joined(separator: ", ")))")
            }
        }
        if let info = sourceInfo, !isRegular(info) {
            throw MoveError(.notRegularFile, "\(source) is \((info.st_mode & S_IFMT) == S_IFLNK ? "a symbolic link" : "not a regular file"); refused")
        }

        if destinationInfo != nil {
            // Both exist (a crash after publishing, before removing the source): remove the source
            // only if the two are identical.
            let (sourceSum, _) = try hashFile(at: source)
            let (destinationSum, bytes) = try hashFile(at: destination)
            guard sourceSum == destinationSum else {
                throw MoveError(.destinationConflict, "\(destination) already exists with other content than \(source); both left untouched")
            }
            try removeSource(source)
            return MoveResult(bytes: bytes, checksum: destinationSum, method: .alreadyInPlace)
        }

        try makeDirectories(base: request.targetDirectory, relative: relative)
        let input = open(source, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard input >= 0 else { throw MoveError.system("cannot open", source, errno: errno) }
        defer { close(input) }
        var status = stat()
        guard fstat(input, &status) == 0 else { throw MoveError.system("cannot stat", source, errno: errno) }
        var directoryStatus = stat()
        guard stat(destinationDirectory, &directoryStatus) == 0 else {
            throw MoveError.system("cannot stat", destinationDirectory, errno: errno)
        }

        if status.st_dev == directoryStatus.st_dev {
            if let result = try renameWithinFilesystem(input: input, source: source, destination: destination,
                                                       beforePublish: beforePublish) {
                return result
            }
        }
        return try copyAcrossFilesystems(input: input, status: status, source: source, destination: destination,
                                         request: request, beforeCopy: beforeCopy, beforePublish: beforePublish, shouldStop: shouldStop)
    }

    // MARK: - Same filesystem

    /// link + unlink: like rename, but never replaces a file that appeared at the destination.
    /// Nil when the filesystem cannot link (EXDEV between bind mounts of one device): copy instead.
    private func renameWithinFilesystem(input: Int32, source: String, destination: String,
                                        beforePublish: (String, Int64) throws -> Void) throws -> MoveResult? {
        let (checksum, bytes) = try hash(descriptor: input, path: source)
        try beforePublish(checksum, bytes)
        if link(source, destination) != 0 {
            let code = errno
            switch code {
            case EXDEV: return nil
            case EEXIST:
                // Another delivery of this job got there first: fine if it holds these very bytes.
                guard try hashFile(at: destination).0 == checksum else {
                    throw MoveError(.destinationConflict, "\(destination) appeared while moving with other content; left untouched")
                }
                try removeSource(source)
                return MoveResult(bytes: bytes, checksum: checksum, method: .alreadyInPlace)
            case EPERM, EOPNOTSUPP, EMLINK:
                // No hard links here: rename, the destination having been checked absent.
                guard rename(source, destination) == 0 else { throw MoveError.system("cannot rename to", destination, errno: errno) }
                try step(.published)
                try syncDirectory(parent(of: destination))
                try step(.targetDirectorySynced)
                try syncDirectory(parent(of: source))
                try step(.sourceDirectorySynced)
                return MoveResult(bytes: bytes, checksum: checksum, method: .renamed)
            default: throw MoveError.system("cannot link to", destination, errno: code)
            }
        }
        try step(.published)
        try syncDirectory(parent(of: destination))
        try step(.targetDirectorySynced)
        try removeSource(source)
        return MoveResult(bytes: bytes, checksum: checksum, method: .renamed)
    }

    // MARK: - Across filesystems

    private func copyAcrossFilesystems(input: Int32, status: stat, source: String, destination: String, request: MoveRequest,
                                       beforeCopy: (String) throws -> Void, beforePublish: (String, Int64) throws -> Void,
                                       shouldStop: () -> Bool) throws -> MoveResult {
        let part = Self.partPath(request)
        try beforeCopy(part)
        let output = open(part, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard output >= 0 else { throw MoveError.system("cannot create", part, errno: errno) }
        // From here on the temporary file is used through its descriptor only: if a second delivery
        // of the job (after a false reap) replaced the name, this one still verifies and publishes
        // exactly the bytes it wrote, and never removes the other's file.
        defer {
            removeIfSame(part, as: output)
            close(output)
        }

        let size = Int64(status.st_size)
        if size > 0 {
            let code = posix_fallocate(output, 0, off_t(size))
            if code == ENOSPC || code == EDQUOT || code == EFBIG { throw MoveError.system("cannot reserve \(size) bytes for", part, errno: code) }
        }

        // One pass over the source, on two cores: while chunk i is hashed, it is written and chunk
        // i + 1 is read into the other buffer.
        var hasher = SHA256()
        var copied: Int64 = 0
        let buffers = (0..<2).map { _ in UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 4096) }
        defer { buffers.forEach { $0.deallocate() } }
        _ = posix_fadvise(input, 0, 0, POSIX_FADV_SEQUENTIAL)
        var current = 0
        var length = try readChunk(input, into: buffers[0], path: source)
        while length > 0 {
            if shouldStop() { throw MoveError(.cancelled, "stopped while copying \(source)") }
            // Two lanes touch disjoint buffers (one reads `chunk`, the other fills `spare`).
            nonisolated(unsafe) let chunk = UnsafeRawBufferPointer(rebasing: buffers[current][0..<length])
            nonisolated(unsafe) let spare = buffers[1 - current]
            nonisolated(unsafe) var hashing = hasher
            nonisolated(unsafe) var outcome: Result<Int, MoveError> = .success(0)
            DispatchQueue.concurrentPerform(iterations: 2) { lane in
                if lane == 0 {
                    hashing.update(bufferPointer: chunk)
                } else {
                    outcome = Result {
                        try writeAll(output, chunk, path: part)
                        return try readChunk(input, into: spare, path: source)
                    }.mapError { $0 as? MoveError ?? MoveError(.io, "\($0)") }
                }
            }
            hasher = hashing
            copied += Int64(length)
            length = try outcome.get()
            current = 1 - current
        }
        guard copied == size else {
            throw MoveError(.io, "\(source) changed size while being copied (\(size) → \(copied) bytes)")
        }
        let checksum = hex(hasher.finalize())
        try step(.copied)

        guard fsync(output) == 0 else { throw MoveError.system("cannot fsync", part, errno: errno) }
        try step(.synced)
        if copied > 0, faults?.corruptBeforeReadBack?() == true { corruptOneByte(part, at: copied / 2) }
        // Read back what the device holds, not what the page cache remembers.
        _ = posix_fadvise(output, 0, 0, POSIX_FADV_DONTNEED)
        let (readBack, readBytes) = try hashOverlapped(descriptor: output, path: part, buffers: buffers)
        guard readBack == checksum, readBytes == copied else {
            throw MoveError(.checksumMismatch, "\(part) read back as \(readBack.prefix(16))… but \(source) hashed to \(checksum.prefix(16))…")
        }
        try step(.verified)

        // Keep mode, owner (when allowed) and times.
        if geteuid() == 0 { _ = fchown(output, status.st_uid, status.st_gid) }
        guard fchmod(output, status.st_mode & 0o7777) == 0 else { throw MoveError.system("cannot set the mode of", part, errno: errno) }
        var times = [status.st_atim, status.st_mtim]
        guard futimens(output, &times) == 0 else { throw MoveError.system("cannot set the times of", part, errno: errno) }
        guard fsync(output) == 0 else { throw MoveError.system("cannot fsync", part, errno: errno) }

        try beforePublish(checksum, copied)
        try publish(output, part: part, as: destination, checksum: checksum)
        removeIfSame(part, as: output)
        try step(.published)
        try syncDirectory(parent(of: destination))
        try step(.targetDirectorySynced)
        try removeSource(source)
        return MoveResult(bytes: copied, checksum: checksum, method: .copied)
    }

    /// Gives the open temporary file its final name without replacing anything: a hard link made
    /// from the descriptor (`/proc/self/fd`), so the name gets the very inode that was verified.
    private func publish(_ fd: Int32, part: String, as destination: String, checksum: String) throws {
        var linked = linkat(AT_FDCWD, "/proc/self/fd/\(fd)", AT_FDCWD, destination, AT_SYMLINK_FOLLOW) == 0
        var code = errno
        if !linked && code == ENOENT && access("/proc/self/fd", F_OK) != 0 {
            // No /proc: link by name, after checking the name is still ours.
            guard isSame(part, as: fd) else { throw MoveError(.io, "\(part) was replaced while copying; the copy restarts") }
            linked = link(part, destination) == 0
            code = errno
        }
        if linked { return }
        switch code {
        case EEXIST:
            // Another delivery of this job published first: fine if it holds these very bytes.
            guard try hashFile(at: destination).0 == checksum else {
                throw MoveError(.destinationConflict, "\(destination) appeared while copying with other content; left untouched")
            }
        case EPERM, EOPNOTSUPP, EMLINK:
            // No hard links on this filesystem: rename the name, if it is still ours.
            guard isSame(part, as: fd), rename(part, destination) == 0 else { throw MoveError.system("cannot publish", destination, errno: code) }
        case ENOENT:
            throw MoveError(.io, "\(part) was removed while copying; the copy restarts")
        default:
            throw MoveError.system("cannot publish", destination, errno: code)
        }
    }

    /// True when `path` names the file open as `fd`.
    private func isSame(_ path: String, as fd: Int32) -> Bool {
        var named = stat(), open = stat()
        return lstat(path, &named) == 0 && fstat(fd, &open) == 0 && named.st_dev == open.st_dev && named.st_ino == open.st_ino
    }

    /// Removes the temporary file's name only while it still names this delivery's file.
    private func removeIfSame(_ path: String, as fd: Int32) {
        if isSame(path, as: fd) { unlink(path) }
    }

    // MARK: - Reconciliation

    /// SHA-256 of a file, lower-case hex (not following a symlink).
    public func checksum(of path: String) throws -> String {
        try hashFile(at: path).0
    }

    /// Removes one of several copies that were verified identical, and syncs its directory.
    public func removeVerifiedDuplicate(_ path: String) throws {
        guard unlink(path) == 0 || errno == ENOENT else { throw MoveError.system("cannot remove", path, errno: errno) }
        try syncDirectory(parent(of: path))
    }

    // MARK: - Helpers

    private func step(_ step: MoveStep) throws {
        try faults?.onStep?(step)
    }

    /// Fault injection only: flips one byte of a file on the device.
    private func corruptOneByte(_ path: String, at offset: Int64) {
        let fd = open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var byte: UInt8 = 0
        guard pread(fd, &byte, 1, off_t(offset)) == 1 else { return }
        byte ^= 0xff
        _ = pwrite(fd, &byte, 1, off_t(offset))
        _ = fsync(fd)
    }

    private func removeSource(_ source: String) throws {
        guard unlink(source) == 0 || errno == ENOENT else { throw MoveError.system("cannot remove the source", source, errno: errno) }
        try step(.sourceRemoved)
        try syncDirectory(parent(of: source))
        try step(.sourceDirectorySynced)
    }

    /// SHA-256 and size of an open file from its start, reading chunk i + 1 while chunk i is hashed.
    private func hashOverlapped(descriptor fd: Int32, path: String, buffers: [UnsafeMutableRawBufferPointer]) throws -> (String, Int64) {
        var hasher = SHA256()
        var total: Int64 = 0
        var current = 0
        var length = try readChunk(fd, into: buffers[0], at: 0, path: path)
        while length > 0 {
            nonisolated(unsafe) let chunk = UnsafeRawBufferPointer(rebasing: buffers[current][0..<length])
            nonisolated(unsafe) let spare = buffers[1 - current]
            nonisolated(unsafe) var hashing = hasher
            nonisolated(unsafe) var next: Result<Int, any Error> = .success(0)
            let offset = total + Int64(length)
            DispatchQueue.concurrentPerform(iterations: 2) { lane in
                if lane == 0 {
                    hashing.update(bufferPointer: chunk)
                } else {
                    next = Result { try readChunk(fd, into: spare, at: offset, path: path) }
                }
            }
            hasher = hashing
            total = offset
            length = try next.get()
            current = 1 - current
        }
        return (hex(hasher.finalize()), total)
    }

    /// Fills `buffer` from `fd` (from its position, or from `offset`) as far as the file goes; 0 at its end.
    private func readChunk(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64? = nil, path: String) throws -> Int {
        var filled = 0
        while filled < buffer.count {
            let count = offset.map { pread(fd, buffer.baseAddress! + filled, buffer.count - filled, off_t($0) + off_t(filled)) }
                ?? read(fd, buffer.baseAddress! + filled, buffer.count - filled)
            if count < 0 {
                if errno == EINTR { continue }
                throw MoveError.system("cannot read", path, errno: errno)
            }
            if count == 0 { break }
            filled += count
        }
        return filled
    }

    private func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        var offset = 0
        while offset < bytes.count {
            let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw MoveError.system("cannot write", path, errno: errno)
            }
            offset += written
        }
    }

    /// SHA-256 and size of a file (opened without following a symlink).
    func hashFile(at path: String, dropCache: Bool = false) throws -> (String, Int64) {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw MoveError.system("cannot open", path, errno: errno) }
        defer { close(fd) }
        if dropCache { _ = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) }
        return try hash(descriptor: fd, path: path)
    }

    private func hash(descriptor fd: Int32, path: String) throws -> (String, Int64) {
        var hasher = SHA256()
        var total: Int64 = 0
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 4096)
        defer { buffer.deallocate() }
        while true {
            let count = pread(fd, buffer.baseAddress, chunkSize, off_t(total))
            if count < 0 {
                if errno == EINTR { continue }
                throw MoveError.system("cannot read", path, errno: errno)
            }
            if count == 0 { break }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
            total += Int64(count)
        }
        return (hex(hasher.finalize()), total)
    }

    private func hex(_ digest: SHA256.Digest) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for byte in digest {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    private func syncDirectory(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw MoveError.system("cannot open the directory", path, errno: errno) }
        defer { close(fd) }
        guard fsync(fd) == 0 || errno == EINVAL else { throw MoveError.system("cannot fsync the directory", path, errno: errno) }
    }

    private func requireDirectory(_ path: String) throws {
        var info = stat()
        guard stat(path, &info) == 0 else { throw MoveError.system("cannot reach the level directory", path, errno: errno) }
        guard (info.st_mode & S_IFMT) == S_IFDIR else { throw MoveError(.io, "the level directory \(path) is not a directory") }
    }

    /// A subdirectory of the filename that is a symlink could lead outside the level directory.
    private func refuseSymlinkedDirectories(base: String, relative: String) throws {
        var path = base
        for component in relative.split(separator: "/").dropLast() {
            path += "/" + component
            guard let info = try lstatIfPresent(path) else { return }
            if (info.st_mode & S_IFMT) == S_IFLNK {
                throw MoveError(.invalidFilename, "\(path) is a symbolic link; a filename must stay inside its level directory")
            }
        }
    }

    private func makeDirectories(base: String, relative: String) throws {
        var path = base
        for component in relative.split(separator: "/").dropLast() {
            path += "/" + component
            if mkdir(path, 0o755) != 0 && errno != EEXIST { throw MoveError.system("cannot create the directory", path, errno: errno) }
        }
    }

    private func lstatIfPresent(_ path: String) throws -> stat? {
        var info = stat()
        if lstat(path, &info) == 0 { return info }
        if errno == ENOENT { return nil }
        throw MoveError.system("cannot stat", path, errno: errno)
    }

    private func isRegular(_ info: stat) -> Bool { (info.st_mode & S_IFMT) == S_IFREG }

    private func join(_ directory: String, _ relative: String) -> String {
        directory.hasSuffix("/") ? directory + relative : directory + "/" + relative
    }

    private func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}
