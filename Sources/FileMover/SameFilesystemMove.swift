import RelocatorCore

extension Move {
    /// Same filesystem: the open source is linked under the new name (like rename, but never
    /// replacing a name that appeared meanwhile), then the old name goes. Nil when the two
    /// directories cannot be linked across (EXDEV: bind mounts of one filesystem): copy instead.
    func moveWithinFilesystem(_ source: LevelRoot.OpenFile, to target: LevelRoot.Entry, foundIn: LevelPlace) throws -> MoveResult? {
        let (sum, bytes) = try hashSource(source)
        clock.lap(.copy)
        try source.requireUnchanged()
        try hooks.willPublish(sum, bytes)
        clock.lap(.queue)
        try requireInPlace(target)

        switch Linux.link(source.file.fd, into: target.directory.fd, as: target.name) {
        case .success:
            break
        case .failure(.improperLink):
            return nil
        case .failure(.fileExists):
            return try settleAppeared(source, at: target, checksum: sum, bytes: bytes, foundIn: foundIn)
        case .failure(.notPermitted), .failure(.notSupported), .failure(.tooManyLinks):
            // Hard links refused (another user's file under fs.protected_hardlinks, or a
            // filesystem without them): rename the name instead, without replacing.
            return try renameWithinFilesystem(source, to: target, checksum: sum, bytes: bytes, foundIn: foundIn)
        case .failure(let error):
            throw MoveError.system("cannot link to", target.display, error)
        }
        clock.lap(.publish)
        try step(.published)
        try target.root.sync(target.directory)
        clock.lap(.targetDirectoryFsync)
        try step(.targetDirectorySynced)

        // The link changed the file's change time: what it is now is the reference, as long as
        // its size and modification time are still those that were hashed.
        let linked = FileIdentity(try source.file.stat())
        let published = Published(entry: target, identity: linked)
        guard linked.size == source.identity.size, linked.modified.tv_sec == source.identity.modified.tv_sec,
              linked.modified.tv_nsec == source.identity.modified.tv_nsec else {
            let note = discard(published, keeping: source.entry)
            throw MoveError(.sourceChanged, "\(source.entry.display) was written to while it was being moved; \(note)")
        }
        try removeSource(source, since: linked, destination: target, published: published)
        return MoveResult(bytes: bytes, checksum: sum, method: .linked, foundIn: foundIn.level)
    }

    /// `renameat2(RENAME_NOREPLACE)` of the source's name, checked to be the file that was hashed.
    private func renameWithinFilesystem(_ source: LevelRoot.OpenFile, to target: LevelRoot.Entry, checksum sum: Checksum,
                                        bytes: Int64, foundIn: LevelPlace) throws -> MoveResult? {
        let entry = source.entry
        guard try entry.root.stillResolves(entry.directoryPath.split(separator: "/"), to: entry.directory) else {
            throw MoveError(.sourceChanged, "the directory of \(entry.display) was moved or replaced during the move; nothing moved")
        }
        try source.requireUnchanged()
        switch Linux.renameNoReplace(entry.directory.fd, entry.name, to: target.directory.fd, target.name) {
        case .success:
            break
        case .failure(.improperLink):
            return nil
        case .failure(.fileExists):
            return try settleAppeared(source, at: target, checksum: sum, bytes: bytes, foundIn: foundIn)
        case .failure(let error):
            throw MoveError.system("cannot rename \(entry.display) to", target.display, error)
        }
        guard try target.names(source.identity) else {
            // Another file took the source's name between the check and the rename: give it its
            // name back and start again.
            if case .failure(let error) = Linux.renameNoReplace(target.directory.fd, target.name, to: entry.directory.fd, entry.name) {
                throw MoveError.system("\(entry.display) was replaced during the move and cannot be renamed back from", target.display, error)
            }
            throw MoveError(.sourceChanged, "\(entry.display) was replaced during the move; nothing moved")
        }
        clock.lap(.publish)
        try step(.published)
        try target.root.sync(target.directory)
        clock.lap(.targetDirectoryFsync)
        try step(.targetDirectorySynced)
        try entry.root.sync(entry.directory)
        clock.lap(.sourceDirectoryFsync)
        try step(.sourceDirectorySynced)
        hooks.didRemoveSource()
        return MoveResult(bytes: bytes, checksum: sum, method: .linked, foundIn: foundIn.level)
    }

    /// The final name appeared while this move was on its way (another delivery of the job): fine
    /// when it holds these very bytes — then the source goes as usual.
    func settleAppeared(_ source: LevelRoot.OpenFile, at target: LevelRoot.Entry, checksum sum: Checksum, bytes: Int64,
                        foundIn: LevelPlace) throws -> MoveResult {
        guard let other = try target.openRegularFile() else {
            throw MoveError(.sourceChanged, "\(target.display) appeared and disappeared during the move")
        }
        if !other.identity.isSameFile(as: source.identity) {
            let (otherSum, _) = try other.file.hash(sum.algorithm, buffers: buffers)
            guard otherSum == sum else {
                throw MoveError(.destinationConflict, "\(target.display) appeared during the move with other content; left untouched")
            }
        }
        try removeSource(source, since: source.identity, destination: target, published: nil)
        return MoveResult(bytes: bytes, checksum: sum, method: .alreadyInPlace, foundIn: foundIn.level)
    }

    /// The entry's directory is still where its level says (not renamed away, no link on the way
    /// now): checked right before a name is given, so nothing lands outside the level.
    func requireInPlace(_ target: LevelRoot.Entry) throws {
        guard try target.root.stillResolves(target.directoryPath.split(separator: "/"), to: target.directory) else {
            throw MoveError(.ioError, "the directory of \(target.display) was moved or replaced during the move; nothing published")
        }
    }
}
