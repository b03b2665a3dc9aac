import RelocatorCore
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// What `relocator reconcile` does on a level's disk, with the same safe resolution as the mover.
extension LevelRoot {
    /// A temporary file found under the level directory.
    public struct PartFile: Equatable, Sendable {
        /// Relative to the level directory: `movies/.a.mp4.relocator-7-3.part`.
        public var relativePath: String
        public var name: PartName
        /// The level directory joined with `relativePath`.
        public var path: String
    }

    /// Every file under the level directory whose name is a `PartName`. Symbolic links are never
    /// followed (a linked directory is not entered).
    public func partFiles() throws -> [PartFile] {
        var found: [PartFile] = []
        // Directories still to list, each opened only when its turn comes: what stays open is the
        // directories on the way down that still have some to list.
        var pending: [(parent: Descriptor?, relative: String)] = [(nil, "")]
        while let (parent, relative) = pending.popLast() {
            let directory: Descriptor
            if let parent {
                let name = String(relative.split(separator: "/").last!)
                switch Linux.openAt(parent.fd, name, flags: O_RDONLY | O_DIRECTORY | O_NOFOLLOW) {
                case .success(let fd): directory = Descriptor(fd, display: display(relative))
                // Removed, or swapped for a link, since it was listed: not ours to enter.
                case .failure(.noSuchFileOrDirectory), .failure(.tooManySymbolicLinkLevels), .failure(.notDirectory): continue
                case .failure(let error): throw MoveError.system("cannot open the directory", display(relative), error)
                }
            } else {
                directory = try reopenRoot()
            }
            for (name, type) in try entries(of: directory) {
                let child = relative.isEmpty ? name : relative + "/" + name
                if type == .directory {
                    pending.append((directory, child))
                } else if type == .regular, let part = PartName(parsing: name) {
                    found.append(PartFile(relativePath: child, name: part, path: join(self.directory, child)))
                }
            }
        }
        return found.sorted { $0.relativePath < $1.relativePath }
    }

    /// Removes a temporary file (a regular file whose name is a `PartName`) and fsyncs its
    /// directory; false when it was already gone. Anything else at that name is left alone.
    @discardableResult
    public func removePart(_ relativePath: String) throws -> Bool {
        let filename: Filename
        do { filename = try Filename(relativePath) } catch {
            throw MoveError(.invalidFilename, "\(display(relativePath)): \(error)")
        }
        guard PartName(parsing: filename.baseName) != nil else {
            throw MoveError(.invalidFilename, "\(display(relativePath)) is not the name of a temporary file of a move")
        }
        guard let entry = try entry(filename, create: false), let status = try entry.status() else { return false }
        if status.isSymbolicLink { throw MoveError.symbolicLink(entry.display) }
        guard status.isRegularFile else { throw MoveError(.notRegularFile, "\(entry.display) is \(status.typeDescription); left alone") }
        try entry.remove()
        return true
    }

    /// The checksum of `filename` here; nil when there is no such file.
    public func checksum(of filename: Filename, algorithm: ChecksumAlgorithm, chunkSize: Int = 1 << 20) throws -> Checksum? {
        guard let entry = try entry(filename, create: false), let source = try entry.openRegularFile() else { return nil }
        return try source.file.hash(algorithm, buffers: ChunkBuffers(chunkSize: chunkSize)).0
    }

    /// Removes this level's copy of `filename` when `keeper` holds the same bytes, checking both
    /// right before the unlink: both are hashed, this copy must be unchanged since it was hashed
    /// and its name must still be that file. Never removes the only copy: not when the two levels
    /// are one directory, nor when `keeper` has no such file. Returns the checksum.
    @discardableResult
    public func removeDuplicate(_ filename: Filename, keeping keeper: LevelRoot, algorithm: ChecksumAlgorithm,
                                chunkSize: Int = 1 << 20) throws -> Checksum {
        guard let entry = try entry(filename, create: false), let copy = try entry.openRegularFile() else {
            throw MoveError(.sourceMissing, "\(display(filename.value)) is not there; nothing removed")
        }
        guard let keptEntry = try keeper.entry(filename, create: false), let kept = try keptEntry.openRegularFile() else {
            throw MoveError(.sourceMissing, "\(keeper.display(filename.value)) is not there; \(copy.entry.display) is kept")
        }
        try refuseSameDirectory(copy.entry, keptEntry)
        let buffers = ChunkBuffers(chunkSize: chunkSize)
        let (sum, _) = try copy.file.hash(algorithm, buffers: buffers)
        if !copy.identity.isSameFile(as: kept.identity) {
            let (keptSum, _) = try kept.file.hash(algorithm, buffers: buffers)
            guard keptSum == sum else {
                throw MoveError(.destinationConflict, "\(copy.entry.display) and \(keptEntry.display) differ; both left untouched")
            }
        }
        try copy.requireUnchanged()
        guard try keptEntry.names(kept.identity) else {
            throw MoveError(.sourceChanged, "\(keptEntry.display) was replaced while it was compared; nothing removed")
        }
        try entry.remove()
        return sum
    }

    /// Refuses two entries that are one: the same name in the same directory (two levels that are
    /// one directory, reached by two paths).
    func refuseSameDirectory(_ a: Entry, _ b: Entry) throws {
        guard a.name == b.name, FileIdentity(try a.directory.stat()).isSameFile(as: FileIdentity(try b.directory.stat())) else { return }
        throw MoveError(.unsafePath, "\(a.display) and \(b.display) are the same file: levels '\(a.root.level)' (\(a.root.directory)) and '\(b.root.level)' (\(b.root.directory)) are one directory; nothing removed")
    }

    /// The names in a directory with their types (`.` and `..` left out).
    private func entries(of directory: Descriptor) throws -> [(String, FileType)] {
        // fdopendir takes the descriptor over: give it a duplicate.
        let copy: FileDescriptor
        do { copy = try directory.fd.duplicate() } catch { throw MoveError.system("cannot list", directory.display, error) }
        guard let stream = fdopendir(copy.rawValue) else {
            let error = Errno(rawValue: errno)
            _ = Glibc.close(copy.rawValue)
            throw MoveError.system("cannot list", directory.display, error)
        }
        defer { closedir(stream) }
        var result: [(String, FileType)] = []
        while true {
            errno = 0
            guard let item = readdir(stream) else {
                if errno != 0 { throw MoveError.system("cannot list", directory.display, Errno(rawValue: errno)) }
                break
            }
            let name = withUnsafeBytes(of: item.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            var type: FileType
            switch Int32(item.pointee.d_type) {
            case Int32(DT_DIR): type = .directory
            case Int32(DT_REG): type = .regular
            case Int32(DT_LNK): type = .symbolicLink
            default:
                // DT_UNKNOWN on some filesystems: ask.
                switch Linux.status(of: name, in: directory.fd) {
                case .success(let status?): type = status.type
                case .success(nil): continue
                case .failure(let error): throw MoveError.system("cannot stat", display(name), error)
                }
            }
            result.append((name, type))
        }
        return result
    }
}
