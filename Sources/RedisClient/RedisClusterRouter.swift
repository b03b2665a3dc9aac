import Foundation
import RelocatorCore

/// Redis Cluster routing: one connection per master, the slot map from `CLUSTER SHARDS` (or
/// `CLUSTER SLOTS` on servers before 7.0), and the redirects of a cluster that changes under us.
///
/// - A command goes to the master of its key's slot (`RedisCommand.slot`); a command without a key
///   goes to any master.
/// - `MOVED`: the slot has a new master. The map is loaded again and the command sent there.
/// - `ASK`: the slot is being migrated and the key is already on the target: `ASKING` and the
///   command go there, once; the map does not change.
/// - `TRYAGAIN`, `LOADING`, `CLUSTERDOWN`, `UNBLOCKED` (a migration or a failover in progress;
///   the command did not run) and a node that cannot be reached: wait a little (20 ms, doubling up to 400 ms) and try again, reloading the map, as long
///   as the command timeout (plus the block time of a blocking command) allows.
/// - At most `maxAttempts` tries per command; then the last error reply is returned (and thrown by
///   `send`).
///
/// The map is loaded from the masters it already knows, then from the seed nodes of the URL.
final class RedisClusterRouter: RedisRouter {
    let url: RedisURL
    let connectTimeout: Duration
    let commandTimeout: Duration
    static let maxAttempts = 16

    private var map = RedisClusterSlotMap()
    private var mapIsStale = true
    private var nodes: [RedisURL.Endpoint: RedisNodeConnection] = [:]

    init(url: RedisURL, connectTimeout: Duration, commandTimeout: Duration) {
        self.url = url
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
    }

    var isConnected: Bool { nodes.values.contains { $0.isConnected } }
    var nodeConnections: [RedisNodeConnection] { Array(nodes.values) }

    /// Loads the slot map (which connects to a node).
    func connect() throws {
        var backoff = RetryBackoff(budget: commandTimeout)
        try loadMap(command: nil, backoff: &backoff)
    }

    func close() {
        for node in nodes.values { node.close() }
    }

    /// The master that serves `slot` in the current map (nil before the map is loaded).
    func master(ofSlot slot: Int) -> RedisURL.Endpoint? { map.owner(of: slot) }

    // MARK: - One command

    func execute(_ command: RedisCommand, script: RedisScript?, block: Duration?) throws -> RedisAnswer {
        var backoff = RetryBackoff(budget: commandTimeout + (block ?? .zero))
        let slot = command.slot
        var redirect: RedisURL.Endpoint?
        var asking = false
        var attempt = 0
        while true {
            attempt += 1
            if mapIsStale {
                do {
                    try loadMap(command: command.name, backoff: &backoff)
                } catch let error as RedisError where error.code != .authentication && attempt < Self.maxAttempts {
                    if backoff.wait() { continue }
                    throw error
                }
            }
            let endpoint = redirect ?? slot.flatMap(map.owner(of:)) ?? anyMaster(attempt)
            let node = self.node(endpoint)
            do {
                try node.prepare(for: command.name)
            } catch let error as RedisError where error.code == .connection || error.code == .timeout {
                // Nothing was sent: find the slot's master again and retry.
                mapIsStale = true
                redirect = nil
                asking = false
                if attempt < Self.maxAttempts && backoff.wait() { continue }
                throw error
            }
            let reply: RedisReply
            do {
                reply = try exchange(command, script: script, on: node, asking: asking, block: block)
            } catch {
                // The command may have run: it is not sent again, and the next command finds the map anew.
                mapIsStale = true
                throw error
            }
            redirect = nil
            asking = false
            guard let kind = RedisClusterRedirect(reply, answeredBy: endpoint), attempt < Self.maxAttempts else {
                return RedisAnswer(reply: reply, node: node)
            }
            switch kind {
            case .moved(_, let target):
                mapIsStale = true
                redirect = target
            case .ask(_, let target):
                redirect = target
                asking = true
            case .tryAgain:
                if !backoff.wait() { return RedisAnswer(reply: reply, node: node) }
            case .clusterDown, .unblocked:
                mapIsStale = true
                if !backoff.wait() { return RedisAnswer(reply: reply, node: node) }
            }
        }
    }

    private func exchange(_ command: RedisCommand, script: RedisScript?, on node: RedisNodeConnection, asking: Bool,
                          block: Duration?) throws -> RedisReply {
        if let block { node.setTimeout(commandTimeout + block) }
        defer { if block != nil { node.setTimeout(commandTimeout) } }
        return try node.exchange(command, script: script, asking: asking)
    }

    // MARK: - Pipelines

    /// Groups the commands by master and writes every group before reading any reply, so a pipeline
    /// costs one round trip per master. Replies come back in the commands' order. Commands whose
    /// node could not be reached (nothing sent) and replies that were redirects are then redone one
    /// by one through `execute`. A connection lost after writing throws, as with one server (the
    /// commands of the other masters have run).
    func pipeline(_ commands: [RedisCommand], scripts: [RedisScript?]) throws -> [RedisAnswer] {
        if commands.isEmpty { return [] }
        if mapIsStale {
            var backoff = RetryBackoff(budget: commandTimeout)
            try loadMap(command: commands[0].name, backoff: &backoff)
        }
        var order: [RedisURL.Endpoint] = []
        var groups: [RedisURL.Endpoint: [Int]] = [:]
        let keyless = anyMaster(1)
        for (index, command) in commands.enumerated() {
            let endpoint = command.slot.flatMap(map.owner(of:)) ?? keyless
            if groups[endpoint] == nil { order.append(endpoint) }
            groups[endpoint, default: []].append(index)
        }

        var answers = [RedisAnswer?](repeating: nil, count: commands.count)
        var redo: [Int] = []
        var ready: [(RedisNodeConnection, [Int])] = []
        for endpoint in order {
            let indices = groups[endpoint]!
            let node = self.node(endpoint)
            do {
                try node.prepare(for: commands[indices[0]].name)
                ready.append((node, indices))
            } catch let error as RedisError where error.code == .connection || error.code == .timeout {
                mapIsStale = true
                redo += indices
            }
        }
        var failure: (any Error)?
        var written: [(RedisNodeConnection, [Int], [RedisNodeConnection.Frame])] = []
        for (node, indices) in ready {
            do {
                let frames = try node.send(indices.map { (commands[$0], scripts[$0]) })
                written.append((node, indices, frames))
            } catch {
                failure = failure ?? error
            }
        }
        for (node, indices, frames) in written {
            do {
                let replies = try node.receive(frames)
                for (index, reply) in zip(indices, replies) { answers[index] = RedisAnswer(reply: reply, node: node) }
            } catch {
                failure = failure ?? error
            }
        }
        if let failure {
            mapIsStale = true
            throw failure
        }
        for (index, answer) in answers.enumerated() {
            guard let answer, let kind = RedisClusterRedirect(answer.reply, answeredBy: answer.node.endpoint) else { continue }
            switch kind {
            case .moved, .clusterDown, .unblocked: mapIsStale = true
            case .ask, .tryAgain: break
            }
            redo.append(index)
        }
        for index in redo.sorted() {
            answers[index] = try execute(commands[index], script: scripts[index], block: nil)
        }
        return answers.map { $0! }
    }

    // MARK: - The map and the nodes

    private func node(_ endpoint: RedisURL.Endpoint) -> RedisNodeConnection {
        if let node = nodes[endpoint] { return node }
        let node = RedisNodeConnection(endpoint: endpoint, username: url.username, password: url.password, database: 0,
                                       connectTimeout: connectTimeout, commandTimeout: commandTimeout)
        nodes[endpoint] = node
        return node
    }

    /// A master for a command without a key; successive attempts go to successive masters.
    private func anyMaster(_ attempt: Int) -> RedisURL.Endpoint {
        let candidates = map.isEmpty ? url.endpoints : map.masters
        return candidates[(attempt - 1) % candidates.count]
    }

    /// Asks the known masters, then the seeds, for the slot map, until one answers. One pass over
    /// the candidates per call of `backoff.wait()` that still fits the deadline.
    private func loadMap(command: String?, backoff: inout RetryBackoff) throws {
        while true {
            var lastError: RedisError?
            var candidates: [RedisURL.Endpoint] = []
            for endpoint in map.masters + url.endpoints where !candidates.contains(endpoint) { candidates.append(endpoint) }
            for endpoint in candidates {
                let node = self.node(endpoint)
                do {
                    try node.prepare(for: "CLUSTER")
                    var reply = try node.roundTrip([RedisCommand("CLUSTER", "SHARDS")])[0]
                    var fresh: RedisClusterSlotMap?
                    if case .error = reply {
                        // Before Redis 7.0.
                        reply = try node.roundTrip([RedisCommand("CLUSTER", "SLOTS")])[0]
                        fresh = RedisClusterSlotMap(slots: reply, answeredBy: endpoint)
                    } else {
                        fresh = RedisClusterSlotMap(shards: reply, answeredBy: endpoint)
                    }
                    if case .error(let message) = reply {
                        lastError = RedisError(code: .server, address: node.address, command: "CLUSTER", message: message)
                        continue
                    }
                    guard let fresh, !fresh.isEmpty else {
                        lastError = RedisError(code: .protocolViolation, address: node.address, command: "CLUSTER",
                                               message: "the node answered no slot map")
                        continue
                    }
                    install(fresh)
                    return
                } catch let error as RedisError {
                    if error.code == .authentication { throw error }
                    lastError = error
                }
            }
            if backoff.wait() { continue }
            let reason = lastError.map { "\($0.address): \($0.message)" } ?? "no node to ask"
            throw RedisError(code: lastError?.code ?? .connection, address: url.address, command: command,
                             message: "no node answered the slot map (last: \(reason))")
        }
    }

    /// Takes a new map and closes the connections to nodes that are no longer masters.
    private func install(_ fresh: RedisClusterSlotMap) {
        map = fresh
        mapIsStale = false
        for (endpoint, node) in nodes where !fresh.masters.contains(endpoint) {
            node.close()
            nodes[endpoint] = nil
        }
    }
}
