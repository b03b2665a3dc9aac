import RelocatorCore

/// The one way a content's level changes once it exists: verified moves a committer takes from
/// the queue, `/update_sentence`'s commit of a done job, and an operator's or reconcile's change
/// of where a file is — each an entry with a generation, so a later move always wins whatever the
/// clocks did.
public enum Commit {
    /// Writes verified moves in the store (one transaction) and returns what the queue's commit
    /// needs: the level names a follow-up may go to, and the policies' word on residency.
    public static func record(_ jobs: [Job], in store: any ContentStoring, halfLife: Duration?) throws -> (levels: [String], policy: CountPolicy) {
        try store.commit(jobs.map(CommitEntry.init))
        let snapshot = PlacementSnapshot(levels: try store.levels(), policies: try store.policies(), halfLife: halfLife)
        return (snapshot.levels.map(\.name), snapshot.countPolicy)
    }

    /// Records that a content's file is on `level` although no move of the queue put it there
    /// (reconcile found it there, an operator said so): a new generation from the queue orders it
    /// after every move before it, the store takes the level with a relocation row naming `by`
    /// (and the file's `bytes`), and then a count read before it is told to read the content
    /// again. False, with nothing changed, while the content has a job in flight (its move decides)
    /// or when the store kept a newer level.
    @discardableResult
    public static func recordLevel(cid: Int64, from: String, to level: String, bytes: Int64 = 0, by: String,
                                   store: any ContentStoring, queue: any JobQueueing) throws -> Bool {
        guard case .count(let gen) = try queue.control(.levelGeneration(cid: cid)) else {
            throw AppError.unavailable("the queue did not give a generation for cid \(cid)")
        }
        guard gen > 0 else { return false }
        let id = JobID(cid: cid, gen: Int64(gen))
        try store.commit([CommitEntry(jobID: id.description, cid: cid, from: from, to: level, bytes: bytes, checksum: "", worker: by,
                                      attempts: 0, gen: Int64(gen))])
        _ = try queue.control(.levelChanged(cid: cid))
        return try store.content(cid: cid)?.level == level
    }
}
