/// The one not-found rule of the dead-letter list, for `relocator dlq replay|purge --cid` and
/// `POST /v1/dead/replay|purge` alike: acting on a cid that has no dead job is an error that names
/// those cids, and then nothing is changed — dry run or not.
public enum DeadLetterSelection {
    /// The asked cids without a dead job among `deadIDs` (`<cid>:<gen>`), once each, in the order
    /// asked.
    public static func missing(_ cids: [Int64], deadIDs: [String]) -> [Int64] {
        let dead = Set(deadIDs.compactMap { JobID($0)?.cid })
        var seen = Set<Int64>()
        return cids.filter { !dead.contains($0) && seen.insert($0).inserted }
    }

    /// `no dead job for cid 99, 100; nothing replayed` (`action` is `replayed` or `purged`).
    public static func message(missing: [Int64], action: String) -> String {
        "no dead job for cid \(missing.map(String.init).joined(separator: ", ")); nothing \(action)"
    }
}
