/// How many replicas must hold a write before it is acknowledged (`RELOCATOR_REDIS_MIN_REPLICAS`),
/// and how long to wait for them. With `replicas` = the number of replicas, a write that was
/// acknowledged survives a failover: a promoted replica holds it, whether the old master was
/// killed or stayed alive (Sentinel's `FAILOVER`, Cluster's `FAILOVER FORCE`).
public struct RedisReplication: Sendable, Equatable {
    public var replicas: Int
    public var timeout: Duration

    public init(replicas: Int, timeout: Duration = .seconds(1)) {
        self.replicas = replicas
        self.timeout = timeout
    }
}

extension RedisConnection {
    /// Runs `body`, then — with `replication` set — sends `WAIT replicas timeout` on every node
    /// connection that answered a command of `body`, the very connections that ran them (a `WAIT`
    /// on another connection waits for nothing). Throws `.replication` when a node confirms fewer
    /// replicas in time, or when the connection that wrote is gone: the writes ran, and may or may
    /// not survive a failover. Nested calls wait once, at the end of the outermost.
    public func replicated<T>(_ body: () throws -> T) throws -> T {
        guard let replication, replication.replicas > 0 else { return try body() }
        let outermost = writers == nil
        if outermost { writers = [] }
        defer { if outermost { writers = nil } }
        let result = try body()
        if outermost { try confirm(writers ?? [], replication) }
        return result
    }

    /// Notes the node connection that answered, while `replicated` records.
    func noteWriter(_ node: RedisNodeConnection) {
        guard writers != nil else { return }
        if !writers!.contains(where: { $0.node === node && $0.connection == node.connectionNumber }) {
            writers!.append((node, node.connectionNumber))
        }
    }

    private func confirm(_ nodes: [(node: RedisNodeConnection, connection: Int)], _ replication: RedisReplication) throws {
        let milliseconds = max(1, replication.timeout.milliseconds)
        for (node, connection) in nodes {
            func unconfirmed(_ why: String) -> RedisError {
                RedisError(code: .replication, address: node.address, command: "WAIT",
                           message: "the write was not confirmed by \(replication.replicas) replica\(replication.replicas == 1 ? "" : "s") within \(milliseconds) ms: \(why)")
            }
            guard node.isConnected, node.connectionNumber == connection else {
                throw unconfirmed("the connection that wrote it is gone")
            }
            node.setTimeout(commandTimeout + replication.timeout)
            defer { node.setTimeout(commandTimeout) }
            let reply: RedisReply
            do {
                reply = try node.roundTrip([RedisCommand("WAIT", replication.replicas, milliseconds)])[0]
            } catch {
                throw unconfirmed("no answer to WAIT")
            }
            if case .error(let message) = reply { throw unconfirmed(String(message.prefix(120))) }
            let confirmed = reply.int ?? 0
            if confirmed < replication.replicas { throw unconfirmed("\(confirmed) confirmed") }
        }
    }
}
