import Foundation
import RelocatorCore

/// The master that Redis Sentinel names, followed across failovers.
///
/// To connect, the sentinels of the URL are asked in turn (`SENTINEL get-master-addr-by-name`,
/// starting with the one that answered last); the address one names is connected to, authenticated
/// and asked `ROLE`, and trusted only when it answers `master` (a sentinel that has not yet seen a
/// failover may name a replica). When no sentinel names a master that says so, the round is tried
/// again after a short wait (20 ms, doubling up to 400 ms) within the command timeout.
///
/// The master is looked up again when a sentinel announces a failover (`+switch-master`, read from
/// a subscribed sentinel connection before each command), when its connection breaks, when the
/// server closed the idle connection (sentinels close clients when they demote an old master), and
/// when it answers `READONLY` or `UNBLOCKED` (it became a replica): such a command did not run and is
/// sent to the new master.
final class RedisSentinelRouter: RedisRouter {
    let url: RedisURL
    let masterName: String
    let connectTimeout: Duration
    let commandTimeout: Duration
    static let maxAttempts = 16

    private var master: RedisNodeConnection?
    /// A connection to a sentinel subscribed to `+switch-master`: a failover it announces drops the
    /// master before the next command, so the client moves even while the old master still accepts
    /// writes (sentinels demote it seconds later).
    private var watch: RedisNodeConnection?
    /// The sentinel that named the current master; asked first next time.
    private var preferred = 0

    init(url: RedisURL, masterName: String, connectTimeout: Duration, commandTimeout: Duration) {
        self.url = url
        self.masterName = masterName
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
    }

    var isConnected: Bool { master?.isConnected ?? false }
    var nodeConnections: [RedisNodeConnection] { master.map { [$0] } ?? [] }

    func connect() throws {
        var backoff = RetryBackoff(budget: commandTimeout)
        _ = try currentMaster(command: nil, backoff: &backoff)
    }

    func close() {
        dropMaster()
        watch?.close()
        watch = nil
    }

    private func dropMaster() {
        master?.close()
        master = nil
    }

    func execute(_ command: RedisCommand, script: RedisScript?, block: Duration?) throws -> RedisAnswer {
        var backoff = RetryBackoff(budget: commandTimeout + (block ?? .zero))
        var attempt = 0
        while true {
            attempt += 1
            let node = try currentMaster(command: command.name, backoff: &backoff)
            let reply: RedisReply
            do {
                if let block { node.setTimeout(commandTimeout + block) }
                defer { if block != nil { node.setTimeout(commandTimeout) } }
                reply = try node.exchange(command, script: script)
            } catch {
                // The command may have run: not sent again; the next command looks the master up.
                dropMaster()
                throw error
            }
            if Self.isDemoted(reply) && attempt < Self.maxAttempts {
                dropMaster()
                continue
            }
            return RedisAnswer(reply: reply, node: node)
        }
    }

    func pipeline(_ commands: [RedisCommand], scripts: [RedisScript?]) throws -> [RedisAnswer] {
        if commands.isEmpty { return [] }
        var backoff = RetryBackoff(budget: commandTimeout)
        let node = try currentMaster(command: commands[0].name, backoff: &backoff)
        var answers: [RedisAnswer]
        do {
            let frames = try node.send(Array(zip(commands, scripts)))
            answers = try node.receive(frames).map { RedisAnswer(reply: $0, node: node) }
        } catch {
            dropMaster()
            throw error
        }
        let refused = answers.indices.filter { Self.isDemoted(answers[$0].reply) }
        if !refused.isEmpty {
            dropMaster()
            for index in refused { answers[index] = try execute(commands[index], script: scripts[index], block: nil) }
        }
        return answers
    }

    /// `READONLY` (a write sent to a node that became a replica) and `UNBLOCKED` (a blocked command
    /// released because its node became a replica): the command did not run.
    private static func isDemoted(_ reply: RedisReply) -> Bool {
        reply.isError("READONLY") || reply.isError("UNBLOCKED")
    }

    // MARK: - Finding the master

    private func currentMaster(command: String?, backoff: inout RetryBackoff) throws -> RedisNodeConnection {
        readAnnouncements()
        if let master {
            if master.isConnected && !master.droppedByServer() { return master }
            dropMaster()
        }
        while true {
            var reasons: [String] = []
            for offset in url.endpoints.indices {
                let index = (preferred + offset) % url.endpoints.count
                let sentinel = url.endpoints[index]
                let named: RedisURL.Endpoint?
                do {
                    named = try ask(sentinel)
                } catch let error as RedisError {
                    if error.code == .authentication { throw error }
                    reasons.append("sentinel \(sentinel): \(error.message)")
                    continue
                }
                guard let named else {
                    reasons.append("sentinel \(sentinel) knows no master '\(masterName)'")
                    continue
                }
                let node = RedisNodeConnection(endpoint: named, username: url.username, password: url.password,
                                               database: url.database, connectTimeout: connectTimeout, commandTimeout: commandTimeout)
                do {
                    try node.connect()
                    let role = try node.roundTrip([RedisCommand("ROLE")])[0]
                    if case .error(let message) = role {
                        reasons.append("\(named): ROLE: \(message)")
                    } else if role.array?.first?.string == "master" {
                        preferred = index
                        master = node
                        if watch == nil { subscribe(to: sentinel) }
                        return node
                    } else {
                        let said = role.array?.first?.string ?? "no role"
                        reasons.append("\(named), named by sentinel \(sentinel), is not the master (ROLE: \(said))")
                    }
                    node.close()
                } catch let error as RedisError {
                    if error.code == .authentication { throw error }
                    reasons.append("\(named): \(error.message)")
                }
            }
            if backoff.wait() { continue }
            throw RedisError(code: .connection, address: url.address, command: command,
                             message: "no master found: \(reasons.joined(separator: "; "))")
        }
    }

    /// Subscribes to a sentinel's `+switch-master` announcements. Best effort: when it cannot, the
    /// failover is still followed through connection errors and READONLY, and the next lookup of the
    /// master tries again.
    private func subscribe(to sentinel: RedisURL.Endpoint) {
        let node = RedisNodeConnection(endpoint: sentinel, username: url.sentinelUsername, password: url.sentinelPassword,
                                       database: 0, connectTimeout: connectTimeout, commandTimeout: commandTimeout)
        do {
            try node.connect()
            let reply = try node.roundTrip([RedisCommand("SUBSCRIBE", "+switch-master")])[0]
            if reply.array?.first?.string == "subscribe" {
                watch = node
                return
            }
        } catch {
            // Not subscribed: see above.
        }
        node.close()
    }

    /// Reads what the subscribed sentinel sent since the last command (a `poll`, no round trip) and
    /// drops the master when a failover of ours was announced
    /// (`message +switch-master "<name> <old ip> <old port> <new ip> <new port>"`).
    private func readAnnouncements() {
        guard let watch else { return }
        do {
            while watch.hasInput() {
                var message: RedisReply? = try watch.readReply(for: "SUBSCRIBE")
                while let current = message {
                    if let items = current.array, items.count == 3, items[0].string == "message",
                       let text = items[2].string, text.split(separator: " ").first.map(String.init) == masterName {
                        dropMaster()
                    }
                    message = try watch.bufferedReply(for: "SUBSCRIBE")
                }
            }
        } catch {
            // The sentinel went away: no more announcements until the next lookup subscribes again.
            watch.close()
            self.watch = nil
        }
    }

    /// The address a sentinel gives for the master; nil when it does not know the name.
    private func ask(_ sentinel: RedisURL.Endpoint) throws -> RedisURL.Endpoint? {
        let node = RedisNodeConnection(endpoint: sentinel, username: url.sentinelUsername, password: url.sentinelPassword,
                                       database: 0, connectTimeout: connectTimeout, commandTimeout: commandTimeout)
        defer { node.close() }
        try node.connect()
        let reply = try node.roundTrip([RedisCommand("SENTINEL", "get-master-addr-by-name", masterName)])[0]
            .throwingServerError(address: node.address, command: "SENTINEL")
        if reply.isNull { return nil }
        guard let items = reply.array, items.count == 2, let host = items[0].string, let port = RedisClusterSlotMap.port(items[1]) else {
            throw RedisError(code: .protocolViolation, address: node.address, command: "SENTINEL",
                             message: "get-master-addr-by-name did not answer a host and a port")
        }
        return RedisURL.Endpoint(host: host, port: port)
    }
}
