import RelocatorCore
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// The copy across filesystems: the temporary file lives in the target level's reserved directory
/// (`.relocator/tmp/<cid>-<gen>.part`), where no content can be, and is used through its
/// descriptor only once created.
extension LevelWorld {
    var partName: PartName { PartName(cid: request.cid, gen: request.gen) }

    /// `O_NOATIME` (Linux's value on every architecture Relocator builds for; Glibc exports it to
    /// GNU C only).
    static var noAccessTime: Int32 { 0o1000000 }

    /// This job's temporary file left by an earlier delivery of it (the caller holds the content's
    /// lock: no delivery of this content is copying here).
    func removeStaleTemporaries() throws {
        guard let root = try root(.target), let directory = try root.existingTemporaryDirectory() else { return }
        switch Linux.status(of: partName.fileName, in: directory.fd) {
        case .success(nil):
            return
        case .success(let status?):
            if status.isSymbolicLink { throw MoveError.symbolicLink(root.display(partName.relativePath)) }
            guard status.isRegularFile else { return }  // creating the file then fails, naming it
            switch Linux.unlink(directory.fd, partName.fileName) {
            case .success, .failure(.noSuchFileOrDirectory): return
            case .failure(let error): throw MoveError.system("cannot remove", root.display(partName.relativePath), error)
            }
        case .failure(let error):
            throw MoveError.system("cannot stat", root.display(partName.relativePath), error)
        }
    }

    func createTemporary() throws -> File {
        let root = try root(.target)!
        let directory = try root.temporaryDirectory()
        let entry = LevelRoot.Entry(root: root, directory: directory, directoryPath: ReservedDirectory.temporaryPath, name: partName.fileName)
        // O_NOATIME: the copy gets the source's times before it is read back from the device, and
        // that read must not change them (the creator owns the new file, so it is always allowed).
        switch Linux.openAt(directory.fd, partName.fileName, flags: O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | Self.noAccessTime, mode: 0o600) {
        case .success(let fd):
            let output = Descriptor(fd, display: entry.display)
            return LevelRoot.OpenFile(entry: entry, file: output, identity: FileIdentity(try output.stat()))
        case .failure(.fileExists):
            throw MoveError(.ioError, "\(entry.display) exists: another delivery of this job is copying; tried again later")
        case .failure(let error):
            throw MoveError.system("cannot create", entry.display, error)
        }
    }

    /// One pass over the source on three threads: while chunk i is written here, it is hashed
    /// and chunk i + 1 is read into the other buffer, both on `BlockingExecutor.shared`, so the
    /// disk, the hash and the target each go at their own pace rather than one after another. A
    /// round ends when all three are done: neither buffer is ever read into while still in use.
    /// Chunks of at most `ChunkBuffers.inlineHashing` bytes (a small file) are done here alone.
    func copy(_ source: File, into copy: File) throws -> Checksum {
        let size = source.identity.size
        let output = copy.file
        buffers.fit(size)
        try reserve(size, in: output)
        clock.lap(.create)
        let hash = RunningHash(algorithm)
        _ = posix_fadvise(source.file.fd.rawValue, 0, 0, POSIX_FADV_SEQUENTIAL)  // advice only
        let readFails = mover.faults?.readFails
        let read = { (buffer: UnsafeMutableRawBufferPointer, offset: Int64) throws -> Int in
            if readFails?(offset) == true { throw MoveError.system("cannot read", source.file.display, Errno.ioError) }
            return try source.file.read(into: buffer, at: offset)
        }
        var copied: Int64 = 0
        var current = 0
        var length = try read(buffers[0], 0)
        while length > 0 {
            if hooks.shouldStop() { throw MoveError(.cancelled, "stopped while copying \(source.entry.display)") }
            let chunk = UnsafeRawBufferPointer(rebasing: buffers[current][0..<length])
            let spare = buffers[1 - current]
            let offset = copied
            let write = { () throws in
                self.hooks.willWrite(Int64(chunk.count))
                if self.hooks.shouldStop() { throw MoveError(.cancelled, "stopped while copying \(source.entry.display)") }
                try output.write(chunk, at: offset)
            }
            let next: Int
            if length <= ChunkBuffers.inlineHashing {
                hash.update(chunk)
                try write()
                next = try read(spare, offset + Int64(length))
            } else {
                let hashing = BlockingExecutor.shared.start { hash.update(chunk) }
                let reading = BlockingExecutor.shared.start { try read(spare, offset + Int64(chunk.count)) }
                let written = Result(catching: write)
                // Both are waited for before anything is thrown: neither outlives its buffer.
                let hashed = Result { try hashing.wait() }
                let readNext = Result { try reading.wait() }
                try written.get()
                try hashed.get()
                next = try readNext.get()
            }
            copied += Int64(length)
            hooks.progress(copied, size)
            length = next
            current = 1 - current
        }
        guard copied == size else {
            throw MoveError(.sourceChanged, "\(source.entry.display) changed size while it was copied (\(size) → \(copied) bytes)")
        }
        let checksum = hash.finalize()
        if Mutant.noReadBack.isActive { lastCopyChecksum = checksum }
        return checksum
    }

    /// Reserves the file's blocks up front: a full disk fails here, and writing into reserved
    /// blocks is faster. Not on a tmpfs: reserving there allocates every page of the file at
    /// once, under the file's lock and before the first byte is read — the work the writes do
    /// anyway, but then none of it beside the reads and the hash (a quarter of a 1 GiB move's
    /// time). Its free room is checked instead, so a tmpfs too small fails here just the same
    /// (one filled meanwhile fails a write with ENOSPC, the same error).
    private func reserve(_ size: Int64, in output: Descriptor) throws {
        guard size > 0 else { return }
        if Linux.isTmpfs(output.fd) {
            var filesystem = statvfs()
            // A tmpfs without a size limit reports no blocks at all.
            guard fstatvfs(output.fd.rawValue, &filesystem) == 0, filesystem.f_blocks > 0 else { return }
            let (room, overflow) = Int64(clamping: filesystem.f_bavail).multipliedReportingOverflow(by: Int64(clamping: filesystem.f_frsize))
            if !overflow, room < size { throw MoveError.system("cannot reserve \(size) bytes for", output.display, Errno.noSpace) }
            return
        }
        var code: Int32
        repeat { code = posix_fallocate(output.fd.rawValue, 0, off_t(size)) } while code == EINTR
        switch Errno(rawValue: code) {
        case Errno(rawValue: 0), .notSupported, .invalidArgument:
            return  // written as it comes
        case let error:
            throw MoveError.system("cannot reserve \(size) bytes for", output.display, error)
        }
    }

    /// The copy's one fsync, after its attributes were set: its bytes and its mode, owner and
    /// times are durable once it returns.
    func syncFile(_ file: File) throws {
        if !Mutant.noCopyFsync.isActive { try file.entry.root.syncing { try file.file.sync() } }
    }

    /// Reads back what the device holds, not what the page cache remembers (advice only: a
    /// filesystem in memory keeps its pages, and that is what it holds). Sequential advice
    /// doubles the kernel's read-ahead for it (a 1 GiB read-back from an ext4 on a loop device
    /// took 0.46–0.78 s with it, 0.50–0.96 s without, cache dropped before each).
    func readBack(_ file: File) throws -> (Checksum, Int64) {
        let size = try file.file.stat().size
        if size > 0, mover.faults?.corruptBeforeReadBack?() == true { try corruptOneByte(file.file, at: size / 2) }
        if Mutant.noReadBack.isActive, let inFlight = lastCopyChecksum { return (inFlight, size) }
        _ = posix_fadvise(file.file.fd.rawValue, 0, 0, POSIX_FADV_DONTNEED)
        _ = posix_fadvise(file.file.fd.rawValue, 0, 0, POSIX_FADV_SEQUENTIAL)
        return try file.file.hash(algorithm, buffers: buffers)
    }

    /// Mode, owner (when root) and access and modification times of the source; made durable by
    /// the copy's fsync, which follows (`syncFile`).
    func keepAttributes(of source: File, on copy: File) throws {
        let output = copy.file
        let status = try source.file.stat()
        if geteuid() == 0 {
            // Best effort: a filesystem without owners refuses it, and the file is root's then.
            _ = fchown(output.fd.rawValue, status.userID.rawValue, status.groupID.rawValue)
        }
        if case .failure(let error) = Linux.call({ fchmod(output.fd.rawValue, status.mode.permissions.rawValue & 0o7777) }) {
            throw MoveError.system("cannot set the mode of", output.display, error)
        }
        var times = [status.st_atim, status.st_mtim]
        if case .failure(let error) = Linux.call({ futimens(output.fd.rawValue, &times) }) {
            throw MoveError.system("cannot set the times of", output.display, error)
        }
    }

    /// Where hard links are refused: the temporary name is renamed, if it still names this copy.
    func renameTemporary(_ file: File, to target: Entry) throws -> RenameOutcome {
        let part = file.entry
        guard try part.names(file.identity) else { throw MoveError(.ioError, "\(part.display) was replaced while copying; the copy restarts") }
        switch Linux.renameNoReplace(part.directory.fd, part.name, to: target.directory.fd, target.name) {
        case .success: return .renamed
        case .failure(.fileExists): return .exists
        case .failure(.improperLink): return .crossDevice
        case .failure(let error): throw MoveError.system("cannot publish", target.display, error)
        }
    }

    /// Removes the temporary file's name while it still names this delivery's file. Best effort:
    /// what is left is removed by the next delivery or the worker's sweep, under the lock.
    func removeTemporary(_ file: File) {
        do {
            if try file.entry.names(file.identity) { _ = Linux.unlink(file.entry.directory.fd, file.entry.name) }
        } catch {
            // Left for the next delivery (see above).
        }
    }

    /// Fault injection only: flips one byte of the copy on the device.
    private func corruptOneByte(_ output: Descriptor, at offset: Int64) throws {
        var byte: UInt8 = 0
        _ = try withUnsafeMutableBytes(of: &byte) { try output.read(into: $0, at: offset) }
        byte ^= 0xff
        try withUnsafeBytes(of: &byte) { try output.write($0, at: offset) }
        try output.sync()
    }
}
