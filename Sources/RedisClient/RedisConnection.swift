import Foundation
import RelocatorCore

/// One blocking connection to Redis over hiredis: to one server (`redis://`), to a Redis Cluster
/// (`redis-cluster://`, one hiredis context per master, commands routed by their key's slot) or to
/// the master that Redis Sentinel names (`redis-sentinel://`). The same calls work on all three.
///
/// Calls block the calling thread: use it from one thread at a time, never from an event loop
/// (`RedisPool` runs them on threads of its own). After an I/O error the hiredis context is dead:
/// it is dropped and the next call connects again. An idle connection that the server closed
/// (a restart, a timeout) is noticed before the next command is written, so that command goes to a
/// fresh connection instead of failing.
///
/// With one server nothing is retried. A cluster connection follows `MOVED` and `ASK`, waits out
/// `TRYAGAIN`, `CLUSTERDOWN` and unreachable nodes during a failover, and a sentinel connection
/// follows a failover to the new master — within the command timeout, and only for commands that
/// surely did not run (see `RedisClusterRouter`, `RedisSentinelRouter`). A connection that breaks
/// after a command was written throws, whatever the topology: the command may have run.
///
/// On a cluster, a Lua script must name its keys in KEYS (all in one slot): a script called with no
/// key runs on any master, where keys of other slots are refused. MULTI/EXEC and pub/sub are not
/// routed.
///
/// Errors name the server (the node, for a cluster or sentinel connection) and the command, never
/// its arguments.
public final class RedisConnection: @unchecked Sendable {
    public let url: RedisURL
    /// How long to wait for the TCP connection.
    public let connectTimeout: Duration
    /// How long to wait for a reply; blocking commands add their own block time to it. Retries
    /// after redirects and failovers fit within it too.
    public let commandTimeout: Duration
    /// With a replica count above 0, `replicated { … }` acknowledges writes only once that many
    /// replicas hold them (`WAIT`).
    public let replication: RedisReplication?

    let router: any RedisRouter
    /// The node connections that answered inside `replicated`, and which connection of each.
    var writers: [(node: RedisNodeConnection, connection: Int)]?

    public init(url: RedisURL, connectTimeout: Duration = .seconds(2), commandTimeout: Duration = .seconds(5),
                replication: RedisReplication? = nil) {
        self.url = url
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.replication = replication
        switch url.topology {
        case .standalone:
            let node = RedisNodeConnection(endpoint: url.endpoints[0], username: url.username, password: url.password,
                                           database: url.database, connectTimeout: connectTimeout, commandTimeout: commandTimeout)
            router = RedisStandaloneRouter(node: node, commandTimeout: commandTimeout)
        case .cluster:
            router = RedisClusterRouter(url: url, connectTimeout: connectTimeout, commandTimeout: commandTimeout)
        case .sentinel(let masterName):
            router = RedisSentinelRouter(url: url, masterName: masterName, connectTimeout: connectTimeout,
                                         commandTimeout: commandTimeout)
        }
    }

    deinit { close() }

    public var isConnected: Bool { router.isConnected }

    /// Connects now (otherwise the first command connects): authenticates and selects the database;
    /// for a cluster, loads the slot map; for a sentinel URL, finds the master.
    public func connect() throws {
        try router.connect()
    }

    /// For a cluster connection: the master that serves `slot` in the slot map this connection holds
    /// now (nil before the map is loaded, and for other topologies). For diagnostics and tests.
    public func clusterMaster(ofSlot slot: Int) -> RedisURL.Endpoint? {
        (router as? RedisClusterRouter)?.master(ofSlot: slot)
    }

    /// Closes the connection (every node's); the next command opens a new one.
    public func close() {
        router.close()
    }

    /// Sends one command and returns its reply; an error reply is thrown as `RedisError` (`.server`).
    @discardableResult
    public func send(_ command: RedisCommand) throws -> RedisReply {
        let answer = try router.execute(command, script: nil, block: nil)
        noteWriter(answer.node)
        return try answer.reply.throwingServerError(address: answer.node.address, command: command.name)
    }

    @discardableResult
    public func send(_ arguments: any RedisArgumentConvertible...) throws -> RedisReply {
        try send(RedisCommand(arguments))
    }

    /// Sends a blocking command (BRPOPLPUSH, BLPOP…) that may wait up to `block` on the server:
    /// the socket timeout is stretched by that much for this one call. It is routed like any
    /// command with a key.
    @discardableResult
    public func sendBlocking(_ command: RedisCommand, block: Duration) throws -> RedisReply {
        let answer = try router.execute(command, script: nil, block: block)
        noteWriter(answer.node)
        return try answer.reply.throwingServerError(address: answer.node.address, command: command.name)
    }

    /// Writes all commands, then reads all replies, in order. Error replies are returned in place.
    /// On a cluster, one round trip per master (see `RedisClusterRouter.pipeline`).
    public func pipeline(_ commands: [RedisCommand]) throws -> [RedisReply] {
        let answers = try router.pipeline(commands, scripts: commands.map { _ in nil })
        for answer in answers { noteWriter(answer.node) }
        return answers.map(\.reply)
    }

    /// Runs a Lua script by its SHA1, loading it first when the server does not hold it.
    ///
    /// The SHA1 is computed here from the source, so the call does not depend on which node loaded
    /// the script. Each node connection remembers which scripts its server holds; the first call on
    /// a connection sends `SCRIPT LOAD` and `EVALSHA` in one round trip, and a node that answers
    /// `NOSCRIPT` all the same (a flush, a restart, a new master after a failover) gets the script
    /// and the call again.
    @discardableResult
    public func evalScript(_ script: RedisScript, keys: [any RedisArgumentConvertible] = [], arguments: [any RedisArgumentConvertible] = []) throws -> RedisReply {
        let command = script.command(sha: script.sha1, keys: keys, arguments: arguments)
        do {
            let answer = try run(command, script: script)
            noteWriter(answer.node)
            return try answer.reply.throwingServerError(address: answer.node.address, command: command.name)
        } catch var error as RedisError where error.code == .server {
            error.command = "EVALSHA \(script.name)"
            error.message = script.translate(error.message)
            throw error
        }
    }

    /// Runs a script many times in one pipeline (see `pipeline(calls:)`).
    public func pipelineScript(_ script: RedisScript,
                               calls: [(keys: [any RedisArgumentConvertible], arguments: [any RedisArgumentConvertible])]) throws -> [RedisReply] {
        try pipeline(calls: calls.map { .script(script, keys: $0.keys, arguments: $0.arguments) })
    }

    /// Commands and script runs in one pipeline, in order: a script a node may not hold is loaded
    /// in the same round trip, ahead of its first call. Calls a node answered NOSCRIPT for all the
    /// same (a flush in between) are sent again after the pipeline, with the script; every other
    /// call ran once. Error replies stay in place.
    public func pipeline(calls: [RedisCall]) throws -> [RedisReply] {
        if calls.isEmpty { return [] }
        var commands: [RedisCommand] = []
        var scripts: [RedisScript?] = []
        for call in calls {
            switch call {
            case .command(let command):
                commands.append(command)
                scripts.append(nil)
            case .script(let script, let keys, let arguments):
                commands.append(script.command(sha: script.sha1, keys: keys, arguments: arguments))
                scripts.append(script)
            }
        }
        var answers = try router.pipeline(commands, scripts: scripts)
        for index in answers.indices where answers[index].reply.isNoScript {
            guard let script = scripts[index] else { continue }
            answers[index] = try run(commands[index], script: script)
        }
        for answer in answers { noteWriter(answer.node) }
        // Script errors name the script's file and line.
        return answers.indices.map { index in
            if case .error(let message) = answers[index].reply, let script = scripts[index] {
                return .error(script.translate(message))
            }
            return answers[index].reply
        }
    }

    /// Sends an EVALSHA; a node that answers NOSCRIPT forgets that it held the script, so the next
    /// try loads it there first.
    private func run(_ command: RedisCommand, script: RedisScript) throws -> RedisAnswer {
        var answer = try router.execute(command, script: script, block: nil)
        var tries = 1
        while answer.reply.isNoScript && tries < 3 {
            answer = try router.execute(command, script: script, block: nil)
            tries += 1
        }
        return answer
    }
}

/// One call in a mixed pipeline.
public enum RedisCall: Sendable {
    case command(RedisCommand)
    case script(RedisScript, keys: [any RedisArgumentConvertible], arguments: [any RedisArgumentConvertible])

    var name: String {
        switch self {
        case .command(let command): return command.name
        case .script(let script, _, _): return "EVALSHA \(script.name)"
        }
    }
}

extension RedisReply {
    /// Throws an error reply as a `RedisError`; returns any other reply unchanged.
    public func throwingServerError(address: String, command: String) throws -> RedisReply {
        if case .error(let message) = self {
            let code: RedisError.Code = message.hasPrefix("NOAUTH") || message.hasPrefix("WRONGPASS") ? .authentication : .server
            throw RedisError(code: code, address: address, command: command, message: message)
        }
        return self
    }
}
