import RelocatorCore

/// Which master serves each of the 16384 slots, as one node sees it.
struct RedisClusterSlotMap: Equatable {
    /// The masters, in the order first seen.
    private(set) var masters: [RedisURL.Endpoint] = []
    /// For every slot, an index into `masters`, or -1 when no master serves it.
    private(set) var owners = [Int16](repeating: -1, count: RedisSlot.count)

    init() {}

    /// From `CLUSTER SHARDS` (Redis 7): per shard, `slots` (start/end pairs) and `nodes` (maps with
    /// `ip`, `endpoint`, `port`, `role`…). `node` is the node that answered: an empty or `?` address
    /// means that node's own host.
    init?(shards reply: RedisReply, answeredBy node: RedisURL.Endpoint) {
        guard let shards = reply.array else { return nil }
        for shard in shards {
            guard let fields = Self.fields(shard), let slots = fields["slots"]?.array,
                  let nodes = fields["nodes"]?.array
            else { return nil }
            let master = nodes.lazy.compactMap(Self.fields).first { $0["role"]?.string == "master" }
            guard let master else { continue }
            guard let port = master["port"].flatMap(Self.port) else { return nil }
            var host = master["endpoint"]?.string ?? ""
            if host.isEmpty || host == "?" { host = master["ip"]?.string ?? "" }
            if host.isEmpty || host == "?" { host = node.host }
            let endpoint = RedisURL.Endpoint(host: host, port: port)
            var index = 0
            while index + 1 < slots.count {
                guard let start = slots[index].int, let end = slots[index + 1].int, start <= end else { return nil }
                guard assign(start...end, to: endpoint) else { return nil }
                index += 2
            }
        }
    }

    /// From `CLUSTER SLOTS`: `[start, end, [host, port, id…], replicas…]` per range.
    init?(slots reply: RedisReply, answeredBy node: RedisURL.Endpoint) {
        guard let ranges = reply.array else { return nil }
        for range in ranges {
            guard let items = range.array, items.count >= 3, let start = items[0].int, let end = items[1].int, start <= end,
                  let master = items[2].array, master.count >= 2, let port = Self.port(master[1])
            else { return nil }
            var host = master[0].string ?? ""
            if host.isEmpty || host == "?" { host = node.host }
            guard assign(start...end, to: RedisURL.Endpoint(host: host, port: port)) else { return nil }
        }
    }

    var isEmpty: Bool { masters.isEmpty }

    /// The master serving `slot`, if any.
    func owner(of slot: Int) -> RedisURL.Endpoint? {
        let index = owners[slot]
        return index < 0 ? nil : masters[Int(index)]
    }

    /// False when the map would name more masters than there are slots (a reply no cluster gives).
    mutating func assign(_ slots: ClosedRange<Int>, to endpoint: RedisURL.Endpoint) -> Bool {
        let index: Int
        if let known = masters.firstIndex(of: endpoint) {
            index = known
        } else {
            guard masters.count < RedisSlot.count else { return false }
            index = masters.count
            masters.append(endpoint)
        }
        // (Only the slots that exist: a range from a reply may reach past them.)
        let lower = max(0, slots.lowerBound), upper = min(RedisSlot.count - 1, slots.upperBound)
        guard lower <= upper else { return true }
        for slot in lower...upper { owners[slot] = Int16(index) }
        return true
    }

    /// A port from a reply, when it is one (1 to 65535).
    static func port(_ reply: RedisReply) -> Int? {
        reply.int.flatMap { RedisURL.Endpoint.ports.contains($0) ? $0 : nil }
    }

    /// A RESP2 map (a flat `[name, value, name, value…]` array) by name.
    private static func fields(_ reply: RedisReply) -> [String: RedisReply]? {
        guard let items = reply.array, items.count % 2 == 0 else { return nil }
        var result: [String: RedisReply] = [:]
        for index in stride(from: 0, to: items.count, by: 2) {
            guard let name = items[index].string else { return nil }
            result[name] = items[index + 1]
        }
        return result
    }
}

/// An error reply that says a cluster command did not run where it was sent.
enum RedisClusterRedirect: Equatable {
    /// The slot lives on another node for good: update the map, send it there.
    case moved(slot: Int, to: RedisURL.Endpoint)
    /// The slot is being migrated and this key is already on the target: send `ASKING` and the
    /// command there, once, without changing the map.
    case ask(slot: Int, to: RedisURL.Endpoint)
    /// A multi-key command during a migration (`TRYAGAIN`), or a node still loading its data
    /// (`LOADING`): try again shortly.
    case tryAgain
    /// The cluster cannot serve the slot right now (a failover): try again shortly.
    case clusterDown
    /// A blocked command was released because the node stopped being a master (`UNBLOCKED`, a
    /// failover): it did not run; find the slot's master again.
    case unblocked

    /// Parses `MOVED 3999 127.0.0.1:6381`, `ASK …`, `TRYAGAIN …`, `LOADING …`, `CLUSTERDOWN …`,
    /// `UNBLOCKED …`; nil for any
    /// other reply. `node` is the node that answered (an empty host means its host).
    init?(_ reply: RedisReply, answeredBy node: RedisURL.Endpoint) {
        guard case .error(let message) = reply else { return nil }
        if reply.isError("TRYAGAIN") || reply.isError("LOADING") {
            self = .tryAgain
            return
        }
        if reply.isError("CLUSTERDOWN") {
            self = .clusterDown
            return
        }
        if reply.isError("UNBLOCKED") {
            self = .unblocked
            return
        }
        let parts = message.split(separator: " ")
        guard parts.count >= 3, parts[0] == "MOVED" || parts[0] == "ASK", let slot = Int(parts[1]),
              (0..<RedisSlot.count).contains(slot), let colon = parts[2].lastIndex(of: ":"),
              let port = Int(parts[2][parts[2].index(after: colon)...]), RedisURL.Endpoint.ports.contains(port)
        else { return nil }
        var host = String(parts[2][..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.isEmpty { host = node.host }
        let endpoint = RedisURL.Endpoint(host: host, port: port)
        self = parts[0] == "MOVED" ? .moved(slot: slot, to: endpoint) : .ask(slot: slot, to: endpoint)
    }
}
