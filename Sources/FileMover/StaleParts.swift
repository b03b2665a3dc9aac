import RelocatorCore

extension Move {
    /// Temporary files of earlier deliveries are removed and the copy restarts: this job's own in
    /// the target directory, and the one the job recorded (maybe in another level, if the job was
    /// re-aimed since). A recorded path is data: it is removed only when it is a `PartName` of
    /// this cid inside one of the request's level directories, resolved as safely as any filename;
    /// any other value is ignored (the move does not need it).
    func removeStaleParts(target: LevelRoot) throws {
        if let entry = try target.entry(filename, create: false) {
            try removeIfRegularFile(entry.sibling(PartName(for: filename, cid: request.cid, gen: request.gen).fileName))
        }
        guard let stale = request.stalePart, let (place, relative) = locate(stale),
              let part = PartName(parsing: relative.baseName), part.cid == request.cid else { return }
        let root: LevelRoot
        do {
            root = try self.root(place)
        } catch let error as MoveError where error.systemError == .noSuchFileOrDirectory {
            return  // that level's directory is not on this machine
        }
        if let entry = try root.entry(relative, create: false) { try removeIfRegularFile(entry) }
    }

    /// A regular file goes; a link planted under the name is refused (the copy could not create
    /// its file there); anything else stays, and creating the file then fails.
    private func removeIfRegularFile(_ entry: LevelRoot.Entry) throws {
        guard let status = try entry.status() else { return }
        if status.isSymbolicLink { throw MoveError.symbolicLink(entry.display) }
        if status.isRegularFile { try entry.remove() }
    }

    /// The level of the request whose directory holds `path`, and the path relative to it.
    private func locate(_ path: String) -> (LevelPlace, Filename)? {
        let components = path.split(separator: "/")
        for place in [request.target, request.source] + request.others {
            let base = place.directory.split(separator: "/")
            guard path.hasPrefix("/"), components.count > base.count, Array(components.prefix(base.count)) == base else { continue }
            do {
                return (place, try Filename(components.dropFirst(base.count).joined(separator: "/")))
            } catch {
                return nil  // `..` or the like: not a path this program recorded
            }
        }
        return nil
    }
}
