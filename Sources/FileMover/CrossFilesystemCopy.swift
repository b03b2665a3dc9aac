import RelocatorCore
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

extension Move {
    /// Across filesystems: copy into this job's temporary file while hashing, fsync, read the
    /// copy back from the device and compare, then publish the verified inode and remove the source.
    func copyAcrossFilesystems(_ source: LevelRoot.OpenFile, to target: LevelRoot.Entry, foundIn: LevelPlace) throws -> MoveResult {
        let part = target.sibling(PartName(for: filename, cid: request.cid, gen: request.gen).fileName)
        // The source's first chunks are read from the device while the queue records the temporary
        // file's name (advice only).
        _ = posix_fadvise(source.file.fd.rawValue, 0, off_t(min(source.identity.size, Int64(2 * mover.chunkSize))), POSIX_FADV_WILLNEED)
        try hooks.recordPart(request.partPath)
        clock.lap(.queue)
        let output: Descriptor
        switch Linux.openAt(target.directory.fd, part.name, flags: O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, mode: 0o600) {
        case .success(let fd):
            output = Descriptor(fd, display: part.display)
        case .failure(.fileExists):
            throw MoveError(.ioError, "\(part.display) exists: another delivery of this job is copying; tried again later")
        case .failure(let error):
            throw MoveError.system("cannot create", part.display, error)
        }
        // From here on the temporary file is used through its descriptor only: if a second delivery
        // of the job (after a false reap) replaced the name, this one still verifies and publishes
        // exactly the bytes it wrote, and never removes the other's file.
        let partIdentity = FileIdentity(try output.stat())
        var named = true
        defer { if named { removeTemporary(part, partIdentity) } }

        let size = source.identity.size
        try reserve(size, in: output)
        clock.lap(.create)
        let checksum = try copy(source, into: output)
        clock.lap(.copy)
        try step(.copied)

        try output.sync()
        clock.lap(.fsync)
        try step(.synced)
        if size > 0, mover.faults?.corruptBeforeReadBack?() == true { try corruptOneByte(output, at: size / 2) }
        // Read back what the device holds, not what the page cache remembers (advice only: a
        // filesystem in memory keeps its pages, and that is what it holds).
        _ = posix_fadvise(output.fd.rawValue, 0, 0, POSIX_FADV_DONTNEED)
        let (readBack, readBytes) = try output.hash(algorithm, buffers: buffers)
        guard readBack == checksum, readBytes == size else {
            throw MoveError(.checksumMismatch, "\(part.display) read back as \(readBack.short) (\(readBytes) bytes) but \(source.entry.display) hashed to \(checksum.short) (\(size) bytes)")
        }
        clock.lap(.readBack)
        try step(.verified)
        try keepAttributes(of: source, on: output)
        clock.lap(.attributes)

        // Cheap, before the file gets its name; again right before the source is removed.
        try source.requireUnchanged()
        try hooks.willPublish(checksum, size)
        clock.lap(.queue)
        try requireInPlace(target)
        let publishedByOther = try publish(output, part: part, identity: partIdentity, as: target, checksum: checksum)
        removeTemporary(part, partIdentity)
        named = false
        clock.lap(.publish)
        try step(.published)
        try target.root.sync(target.directory)
        clock.lap(.targetDirectoryFsync)
        try step(.targetDirectorySynced)

        try removeSource(source, since: source.identity, destination: target,
                         published: publishedByOther ? nil : Published(entry: target, identity: partIdentity))
        return MoveResult(bytes: size, checksum: checksum, method: publishedByOther ? .alreadyInPlace : .copied, foundIn: foundIn.level)
    }

    /// One pass over the source on two threads: while chunk i is hashed (on
    /// `BlockingExecutor.shared`), it is written and chunk i + 1 is read into the other buffer.
    private func copy(_ source: LevelRoot.OpenFile, into output: Descriptor) throws -> Checksum {
        let size = source.identity.size
        let hash = RunningHash(algorithm)
        _ = posix_fadvise(source.file.fd.rawValue, 0, 0, POSIX_FADV_SEQUENTIAL)  // advice only
        var copied: Int64 = 0
        var current = 0
        var length = try source.file.read(into: buffers[0], at: 0)
        while length > 0 {
            if hooks.shouldStop() { throw MoveError(.cancelled, "stopped while copying \(source.entry.display)") }
            let chunk = UnsafeRawBufferPointer(rebasing: buffers[current][0..<length])
            let spare = buffers[1 - current]
            let offset = copied
            let rest = { () throws -> Int in
                self.hooks.willWrite(Int64(chunk.count))
                if self.hooks.shouldStop() { throw MoveError(.cancelled, "stopped while copying \(source.entry.display)") }
                try output.write(chunk, at: offset)
                return try source.file.read(into: spare, at: offset + Int64(chunk.count))
            }
            let next: Result<Int, any Error>
            if length <= ChunkBuffers.inlineHashing {
                hash.update(chunk)
                next = Result(catching: rest)
            } else {
                let hashing = BlockingExecutor.shared.start { hash.update(chunk) }
                next = Result(catching: rest)
                try hashing.wait()
            }
            copied += Int64(length)
            hooks.progress(copied, size)
            length = try next.get()
            current = 1 - current
        }
        guard copied == size else {
            throw MoveError(.sourceChanged, "\(source.entry.display) changed size while it was copied (\(size) → \(copied) bytes)")
        }
        return hash.finalize()
    }

    /// Reserves the file's blocks up front: a full disk fails here, and writing into reserved
    /// blocks is faster.
    private func reserve(_ size: Int64, in output: Descriptor) throws {
        guard size > 0 else { return }
        var code: Int32
        repeat { code = posix_fallocate(output.fd.rawValue, 0, off_t(size)) } while code == EINTR
        switch Errno(rawValue: code) {
        case Errno(rawValue: 0), .notSupported, .invalidArgument:
            return  // written as it comes
        case let error:
            throw MoveError.system("cannot reserve \(size) bytes for", output.display, error)
        }
    }

    /// Mode, owner (when root) and access and modification times of the source.
    private func keepAttributes(of source: LevelRoot.OpenFile, on output: Descriptor) throws {
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
        try output.sync()
    }

    /// Gives the verified temporary file its final name. True when another delivery had already
    /// published the same bytes there.
    private func publish(_ output: Descriptor, part: LevelRoot.Entry, identity: FileIdentity, as target: LevelRoot.Entry,
                         checksum: Checksum) throws -> Bool {
        switch Linux.link(output.fd, into: target.directory.fd, as: target.name) {
        case .success:
            return false
        case .failure(.fileExists):
            guard let other = try target.openRegularFile() else {
                throw MoveError(.sourceChanged, "\(target.display) appeared and disappeared during the move")
            }
            let (otherSum, _) = try other.file.hash(checksum.algorithm, buffers: buffers)
            guard otherSum == checksum else {
                throw MoveError(.destinationConflict, "\(target.display) appeared while copying with other content; left untouched")
            }
            return true
        case .failure(.notPermitted), .failure(.notSupported), .failure(.tooManyLinks):
            // No hard links here: rename the temporary name, if it still names this copy.
            guard try part.names(identity) else { throw MoveError(.ioError, "\(part.display) was replaced while copying; the copy restarts") }
            switch Linux.renameNoReplace(part.directory.fd, part.name, to: target.directory.fd, target.name) {
            case .success: return false
            case .failure(let error): throw MoveError.system("cannot publish", target.display, error)
            }
        case .failure(.noSuchFileOrDirectory):
            throw MoveError(.ioError, "\(part.display) was removed while copying; the copy restarts")
        case .failure(let error):
            throw MoveError.system("cannot publish", target.display, error)
        }
    }

    /// Removes the temporary file's name while it still names this delivery's file. Best effort:
    /// the name is recorded in the job, and the next delivery removes what is left.
    private func removeTemporary(_ part: LevelRoot.Entry, _ identity: FileIdentity) {
        do {
            if try part.names(identity) { _ = Linux.unlink(part.directory.fd, part.name) }
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
