import Foundation
import RelocatorCore

/// A private Redis Sentinel setup for one test: a master, a replica and three sentinels (quorum 2,
/// `down-after-milliseconds` 1000, `failover-timeout` 2000), plain `redis-server` processes on
/// free loopback ports with their own directories. Every process is stopped by PID in `stop()`
/// (also from `deinit`).
public final class RedisSentinelServer: @unchecked Sendable {
    public let masterName: String
    public let password: String?
    /// The data nodes as started: the master first, then the replica.
    public let dataPorts: [Int]
    public let sentinelPorts: [Int]
    private let directory: TemporaryDirectory
    private var processes: [Int: ChildProcess] = [:]
    private let lock = NSLock()

    public init(masterName: String = "relocator", password: String? = nil, sentinels: Int = 3, quorum: Int = 2) throws {
        self.masterName = masterName
        self.password = password
        directory = try TemporaryDirectory("relocator-redis-sentinel")
        let ports = try RedisProcesses.freePorts(2 + sentinels)
        dataPorts = Array(ports.prefix(2))
        sentinelPorts = Array(ports.dropFirst(2))
        do {
            try startDataNode(port: dataPorts[0], replicaOf: nil)
            try startDataNode(port: dataPorts[1], replicaOf: dataPorts[0])
            for port in sentinelPorts {
                try startSentinel(port: port, monitoring: dataPorts[0], quorum: quorum)
            }
            try RedisProcesses.waitUntil("the replica to be in sync") {
                RedisProcesses.fields(try self.cli(self.dataPorts[1], "INFO", "replication"))["master_link_status"] == "up"
            }
            // Failover needs every sentinel to know the replica and the other sentinels.
            try RedisProcesses.waitUntil("the sentinels to know each other and the replica") {
                try self.sentinelPorts.allSatisfy { port in
                    let master = RedisProcesses.pairs(try RedisProcesses.cli(port: port, ["SENTINEL", "MASTER", masterName]))
                    return master["num-slaves"] == "1" && master["num-other-sentinels"] == String(sentinels - 1)
                }
            }
        } catch {
            stop()
            throw error
        }
    }

    deinit { stop() }

    /// `redis-sentinel://127.0.0.1:<s1>,…/<masterName>` with the data nodes' password.
    public var url: RedisURL {
        RedisURL(sentinels: sentinelPorts.map { RedisURL.Endpoint(host: "127.0.0.1", port: $0) }, masterName: masterName,
                 password: password)
    }

    /// `redis-cli` against a data node.
    @discardableResult
    public func cli(_ port: Int, _ arguments: String...) throws -> String {
        try RedisProcesses.cli(port: port, password: password, arguments)
    }

    /// The port of the master as the first answering sentinel names it.
    public func currentMasterPort() throws -> Int {
        var lastError: (any Error)?
        for port in sentinelPorts where isRunning(port) {
            do {
                let lines = try RedisProcesses.cli(port: port, ["SENTINEL", "get-master-addr-by-name", masterName])
                    .split(whereSeparator: \.isNewline)
                if lines.count == 2, let master = Int(lines[1]) { return master }
            } catch {
                lastError = error
            }
        }
        throw lastError ?? RedisProcesses.Failure("no sentinel names the master")
    }

    /// Asks the sentinels for a failover with the master alive (`SENTINEL FAILOVER`) and returns the
    /// master it starts from and the replica it promotes. A sentinel refuses the command while a
    /// failover is running (`INPROG`: on a loaded machine the sentinels may have started one of their
    /// own, as a master that does not answer a PING within `down-after-milliseconds` looks down) and
    /// while it does not yet count the replica as fit (`NOGOODSLAVE`); both are asked again until the
    /// command is taken, from whichever node is master then.
    @discardableResult
    public func failover(timeout: Duration = .seconds(60)) throws -> (from: Int, to: Int) {
        var started: (from: Int, to: Int)?
        try RedisProcesses.waitUntil("a sentinel to take SENTINEL FAILOVER", timeout: timeout) {
            let from = try currentMasterPort()
            guard let to = dataPorts.first(where: { $0 != from }) else { return false }
            let answer = try RedisProcesses.reply(port: sentinelPorts[0], ["SENTINEL", "FAILOVER", masterName])
            guard answer == "OK" else {
                guard answer.hasPrefix("INPROG") || answer.hasPrefix("NOGOODSLAVE") else {
                    throw RedisProcesses.Failure("SENTINEL FAILOVER: \(answer)")
                }
                return false
            }
            started = (from, to)
            return true
        }
        return started!
    }

    /// Whether the failover `failover()` started is over: the sentinels name the promoted replica and
    /// the old master serves as a replica.
    public func failoverIsOver(_ started: (from: Int, to: Int)) throws -> Bool {
        try currentMasterPort() == started.to && serves(asReplica: started.from)
    }

    /// Whether the data node on `port` answers ROLE as a replica. The sentinels demote an old master
    /// with `REPLICAOF` followed by `CLIENT KILL TYPE normal`, which may cut this very ROLE short: a
    /// connection the node closed is an answer of "not yet" (the caller asks again), any other
    /// failure is thrown.
    public func serves(asReplica port: Int) throws -> Bool {
        do {
            return try cli(port, "ROLE").hasPrefix("slave")
        } catch let failure as RedisProcesses.Failure
                    where failure.description.contains("Connection reset by peer") || failure.description.contains("Server closed the connection") {
            return false
        }
    }

    /// Kills the current master with SIGKILL (a crash) and returns its port.
    @discardableResult
    public func kill9Master() throws -> Int {
        let port = try currentMasterPort()
        let process = lock.withLock { processes.removeValue(forKey: port) }
        guard let process else { throw RedisProcesses.Failure("the master on \(port) is not one of ours") }
        process.crash()
        return port
    }

    /// Starts a replica that follows a master that does not exist, and a lone sentinel (quorum 1)
    /// that was told that replica is the master called `masterName`: a sentinel whose answer is a
    /// replica. Returns the lone sentinel's and the replica's ports.
    public func startStraySentinel() throws -> (sentinel: Int, replica: Int) {
        let ports = try RedisProcesses.freePorts(3)
        let (replica, nowhere, sentinel) = (ports[0], ports[1], ports[2])
        try startDataNode(port: replica, replicaOf: nowhere)
        try startSentinel(port: sentinel, monitoring: replica, quorum: 1)
        try RedisProcesses.waitUntil("the stray sentinel to answer") {
            try RedisProcesses.cli(port: sentinel, ["SENTINEL", "get-master-addr-by-name", masterName]).hasSuffix("\(replica)")
        }
        return (sentinel, replica)
    }

    /// Stops every process (SIGTERM, then SIGKILL) and removes the directories.
    public func stop() {
        let all = lock.withLock { () -> [ChildProcess] in
            defer { processes = [:] }
            return Array(processes.values)
        }
        for process in all { process.signal(SIGTERM) }
        for process in all { process.stop(timeout: .seconds(5)) }
        directory.remove()
    }

    private func isRunning(_ port: Int) -> Bool {
        lock.withLock { processes[port]?.isRunning ?? false }
    }

    private func startDataNode(port: Int, replicaOf master: Int?) throws {
        let dir = directory.path + "/\(port)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var arguments = ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no"]
        if let master { arguments += ["--replicaof", "127.0.0.1", String(master)] }
        if let password { arguments += ["--requirepass", password, "--masterauth", password] }
        let process = try RedisProcesses.start(port: port, arguments: arguments, log: dir + "/redis.log")
        lock.withLock { processes[port] = process }
    }

    private func startSentinel(port: Int, monitoring master: Int, quorum: Int) throws {
        let dir = directory.path + "/sentinel-\(port)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var config = """
            port \(port)
            bind 127.0.0.1
            dir \(dir)
            sentinel monitor \(masterName) 127.0.0.1 \(master) \(quorum)
            sentinel down-after-milliseconds \(masterName) 1000
            sentinel failover-timeout \(masterName) 2000
            sentinel parallel-syncs \(masterName) 1

            """
        if let password { config += "sentinel auth-pass \(masterName) \(password)\n" }
        try config.write(toFile: dir + "/sentinel.conf", atomically: true, encoding: .utf8)
        let process = try RedisProcesses.start(port: port, arguments: [dir + "/sentinel.conf", "--sentinel"], log: dir + "/sentinel.log")
        lock.withLock { processes[port] = process }
    }
}
