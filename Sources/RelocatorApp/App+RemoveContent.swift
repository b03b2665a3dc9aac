import FileMover
import RelocatorCore

extension App {
    /// A content's row removed (`removeContent`): the row as it was, and how many relocations stay
    /// as its history.
    public struct RemovedContent: Sendable, Equatable {
        public var content: Content
        public var history: Int
    }

    /// Removes a content's row once its file is gone from every level; never a file. Refused
    /// (`conflict`, nothing changed) while the content has a job that is not committed, and while
    /// any level directory of `directories` holds a file at its path; `directories` must name every
    /// level of the level table (`setting` says where they came from, for the message). The content
    /// is held (`holder` leases it: no worker claims a job of it) while it is looked at and
    /// removed. The queue then forgets its place among the residents, when it last moved and its
    /// hit counter; its relocations stay as history.
    public func removeContent(cid: Int64, directories: LevelDirectories, setting: String, holder: String) async throws -> RemovedContent {
        let content = try await self.content(cid: cid)
        let levels = try await levelNames()
        let unseen = levels.filter { directories.directory(of: $0) == nil }
        guard unseen.isEmpty else {
            throw AppError(.unprocessable, "levels_not_visible",
                           "cannot check every level for cid \(cid)'s file: \(unseen.joined(separator: ", ")) \(unseen.count == 1 ? "has" : "have") no directory in \(setting); nothing removed")
        }
        guard case .flag(true) = try await queue.withSession({ try $0.control(.lease(cid: cid, token: holder, ttl: .seconds(60))) }) else {
            throw AppError.conflict("job_in_flight", "cid \(cid) has a job in flight; nothing removed (relocator why \(cid) shows it)")
        }
        let removed: RemovedContent
        do {
            removed = try await removeLeased(content, levels: levels, directories: directories)
        } catch {
            await unlease(cid: cid, holder: holder)
            throw error
        }
        await unlease(cid: cid, holder: holder)
        return removed
    }

    /// The steps of `removeContent` while the content is held.
    private func removeLeased(_ content: Content, levels: [String], directories: LevelDirectories) async throws -> RemovedContent {
        let cid = content.cid
        if let state = try await queue.withSession({ try $0.states(cids: [cid])[cid] }), state.status != .committed {
            let hint = state.status == .dead ? "`relocator dlq purge --cid \(cid)` forgets it (and removes a copy it may have left)" : "wait until it is committed"
            throw AppError.conflict("job_not_committed", "cid \(cid) has a \(state.status.rawValue) job; nothing removed: \(hint)")
        }
        let filename = content.filename
        // A level in use before whose directory lacks `.relocator/` is a disk not mounted: its
        // empty mountpoint cannot say the file is gone (LevelReadiness).
        guard case .names(let seen) = try await queue.withSession({ try $0.control(.levelsSeen(adding: [])) }) else {
            throw AppError.unavailable("cannot read which levels were in use; nothing removed")
        }
        if let found = try await copies(of: filename, in: directories, seen: Set(seen)), !found.isEmpty {
            throw AppError.conflict("file_present", "cid \(cid)'s file is still on \(found.joined(separator: ", ")); nothing removed (remove the file first, or keep the content)")
        }
        // The queue forgets it first (safe to ask again): a failure there leaves the row, and the
        // command can be run again; the other way round the row would be gone for good.
        let known = Array(Set(levels + directories.names)).sorted()
        _ = try await queue.withSession { try $0.control(.forgetContent(cid: cid, levels: known)) }
        let history = try await store.withStore { store -> Int in
            _ = try store.remove(cid: cid)
            return try store.history(cid: cid).count
        }
        contents.clear()
        return RemovedContent(content: content, history: history)
    }

    private func unlease(cid: Int64, holder: String) async {
        await unlease([cid], holder: holder)
    }

    /// Releases `holder`'s leases of `cids`, on one session.
    func unlease(_ cids: [Int64], holder: String) async {
        guard !cids.isEmpty else { return }
        do {
            _ = try await queue.withSession { session in
                _ = try session.controls(cids.map { .unlease(cid: $0, token: holder) })
            }
        } catch {
            // Each lease expires by itself within a minute.
            logger.debug("leases not released; they expire by themselves", metadata: ["job.cids": "\(cids.count)", "error": "\(error)"])
        }
    }

    /// Where a file lies at `filename`: `gold (/data/ssd/a.mp4)` for each level holding a regular
    /// file there; nil for a filename no level can hold (absolute, `..`…). `unavailable` when a
    /// level of `seen` (in use before) has no `.relocator/`, or its directory does not answer
    /// within the patience of `disks` (each level is looked at on its own queue of looks): out of
    /// service, it cannot tell.
    func copies(of filename: String, in directories: LevelDirectories, seen: Set<String>) async throws -> [String]? {
        let name: Filename
        do {
            name = try Filename(filename)
        } catch {
            return nil
        }
        var found: [String] = []
        for level in directories.names {
            guard let place = directories.place(of: level) else { continue }
            let inUseBefore = seen.contains(level)
            let status: LevelRoot.FileStatus
            switch await disks.look(level, {
                let root = try LevelRoot(place)
                if LevelReadiness.of(hasReservedDirectory: try root.hasReservedDirectory(), seenBefore: inUseBefore) == .unavailable {
                    throw AppError(.unavailable, "level_unavailable",
                                   "cannot tell whether \(level) holds \(filename): \(LevelReadiness.reason(level: level, directory: place.directory)); nothing removed")
                }
                return try root.lookup(name)
            }) {
            case .answered(.success(let looked)):
                status = looked
            case .answered(.failure(let error as AppError)):
                throw error
            case .answered(.failure(let error)):
                throw AppError(.unavailable, "unavailable", "cannot tell whether \(level) holds \(filename): \(error); nothing removed")
            case .notAnswering:
                throw AppError(.unavailable, "level_unavailable",
                               "cannot tell whether \(level) holds \(filename): its directory \(place.directory) did not answer within \(disks.patience) "
                                   + "(a stalled disk, or a network filesystem whose server is gone); nothing removed")
            }
            if case .regularFile = status { found.append("\(level) (\(place.directory)/\(filename))") }
        }
        return found
    }
}
