extension RedisCommand {
    /// The key that decides which cluster node runs the command; nil for a command without one
    /// (any node may answer it).
    ///
    /// - EVAL, EVALSHA, FCALL and their `_RO` forms: the first of their keys (nil with no key).
    /// - Server, connection and cluster commands (PING, INFO, CONFIG, SCRIPT, TIME, ROLE, CLUSTER,
    ///   COMMAND, CLIENT…): nil.
    /// - XREAD and XREADGROUP: the first key after STREAMS; MEMORY USAGE, OBJECT, XINFO and BITOP: the
    ///   third argument.
    /// - SCAN with a MATCH pattern that holds a hash tag (`{relocator:3}job:*`): the pattern, so the
    ///   scan runs on the node that holds every key it can match.
    /// - Every other command: its first argument.
    ///
    /// A command with several keys must keep them in one slot (a hash tag); the server refuses
    /// others with CROSSSLOT.
    public var routingKey: [UInt8]? {
        guard arguments.count > 1 else { return nil }
        let name = self.name
        if name == "SCAN", let match = arguments.firstIndex(where: { String(decoding: $0, as: UTF8.self).uppercased() == "MATCH" }),
           match + 1 < arguments.count {
            let pattern = arguments[match + 1], tag = RedisSlot.hashTag(of: pattern)
            if tag.count < pattern.count, !tag.contains(where: { Array("*?[\\".utf8).contains($0) }) { return pattern }
        }
        if Self.keyless.contains(name) { return nil }
        switch name {
        case "EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO":
            guard arguments.count > 3, let count = Int(String(decoding: arguments[2], as: UTF8.self)), count > 0 else { return nil }
            return arguments[3]
        case "XREAD", "XREADGROUP":
            guard let streams = arguments.firstIndex(where: { String(decoding: $0, as: UTF8.self).uppercased() == "STREAMS" }),
                  streams + 1 < arguments.count
            else { return nil }
            return arguments[streams + 1]
        case "MEMORY", "OBJECT", "XINFO", "BITOP":
            return arguments.count > 2 ? arguments[2] : nil
        default:
            return arguments[1]
        }
    }

    /// The cluster slot of `routingKey`; nil for a command without a key.
    public var slot: Int? { routingKey.map { RedisSlot.of(key: $0) } }

    static let keyless: Set<String> = [
        "ACL", "ASKING", "AUTH", "BGREWRITEAOF", "BGSAVE", "CLIENT", "CLUSTER", "COMMAND", "CONFIG", "DBSIZE",
        "DEBUG", "DISCARD", "ECHO", "EXEC", "FAILOVER", "FLUSHALL", "FLUSHDB", "FUNCTION", "HELLO", "INFO",
        "KEYS", "LASTSAVE", "LATENCY", "LOLWUT", "MODULE", "MONITOR", "MULTI", "PING", "PSUBSCRIBE", "PSYNC",
        "PUBLISH", "PUBSUB", "PUNSUBSCRIBE", "QUIT", "RANDOMKEY", "READONLY", "READWRITE", "REPLICAOF", "RESET",
        "ROLE", "SAVE", "SCAN", "SCRIPT", "SELECT", "SENTINEL", "SHUTDOWN", "SLAVEOF", "SLOWLOG", "SUBSCRIBE",
        "SWAPDB", "SYNC", "TIME", "UNSUBSCRIBE", "UNWATCH", "WAIT",
    ]
}
