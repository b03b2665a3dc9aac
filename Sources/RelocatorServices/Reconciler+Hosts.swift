import RelocatorCore

/// What reconcile concludes of a content whose levels lie on several hosts, from where this host
/// found its file and what the other hosts' workers said — a pure decision (no I/O).
enum HostsVerdict: Equatable, Sendable {
    /// Nothing for this host to say (its file is where the database says, on this host).
    case inPlace
    /// The database places it on another host's level and no level here holds it: that host's
    /// reconcile checks it.
    case elsewhere
    /// Decide as on one host, from this host's levels alone: the other hosts hold no copy.
    case local
    /// One copy, on another host's level than the database says.
    case wrongLevelElsewhere(String)
    /// On no level of any host, every level looked at.
    case missing
    /// Not decided: levels where it may be were not looked at (no worker answered for them).
    case unverified([String])
    /// Files of its name on levels of several hosts (not compared across hosts).
    case copies(local: [String], remote: [String])

    /// Whether the other hosts must be asked before deciding: when this host does not see the
    /// file where the database says and the answer may lie on another host.
    static func needsAsking(database level: String, local: [String], remoteLevels: Set<String>) -> Bool {
        guard !remoteLevels.isEmpty else { return false }
        if local == [level] { return false }
        if remoteLevels.contains(level) { return !local.isEmpty }
        return local.isEmpty
    }

    /// The verdict for a content the database places on `level`, found here on `local`, with the
    /// other hosts' `remote` answer (nil when they were not asked: `needsAsking` was false).
    static func decide(database level: String, local: [String], remoteLevels: Set<String>, remote: RemoteLook?) -> HostsVerdict {
        if local == [level] { return .inPlace }
        if remoteLevels.isEmpty { return .local }
        if remoteLevels.contains(level) && local.isEmpty { return .elsewhere }
        guard let remote else { return .local }
        let found = remote.found.keys.filter { remoteLevels.contains($0) }.sorted()
        let unlooked = remoteLevels.subtracting(remote.looked).sorted()
        if found.count > 1 || (!found.isEmpty && !local.isEmpty) { return .copies(local: local, remote: found) }
        // One copy is one copy only once every level was looked at: another may hold a second.
        if !unlooked.isEmpty { return .unverified(unlooked) }
        if found.count == 1 { return .wrongLevelElsewhere(found[0]) }
        return local.isEmpty ? .missing : .local
    }
}
