import Foundation
import RelocatorCore

/// A private Redis Cluster for one test: `masters` masters with `replicasPerMaster` replicas each
/// (3 + 3 by default), plain `redis-server` processes on free loopback ports with their own data
/// directories, joined by `redis-cli --cluster create`, with a short `cluster-node-timeout` (1 s)
/// so failovers are quick. Every process is stopped by PID in `stop()` (also from `deinit`).
public final class RedisClusterServer: @unchecked Sendable {
    /// One node as `CLUSTER NODES` describes it.
    public struct NodeInfo: Sendable {
        public let id: String
        public let port: Int
        public let isMaster: Bool
        /// Marked `fail` or `fail?` by the node asked.
        public let isFailing: Bool
        /// The master's id, for a replica.
        public let masterID: String?
        public let slots: [ClosedRange<Int>]
    }

    public let password: String?
    /// Every node's port, masters first (as created).
    public let ports: [Int]
    /// The ports of the masters as created (the seeds of `url`).
    public let initialMasters: [Int]
    private let directory: TemporaryDirectory
    private var processes: [Int: ChildProcess] = [:]
    private let lock = NSLock()

    public init(masters: Int = 3, replicasPerMaster: Int = 1, password: String? = nil, nodeTimeoutMilliseconds: Int = 1000) throws {
        self.password = password
        directory = try TemporaryDirectory("relocator-redis-cluster")
        let count = masters * (1 + replicasPerMaster)
        var started: [Int: ChildProcess] = [:]
        var ports: [Int] = []
        do {
            let all = try RedisProcesses.freePorts(count * 2)
            for index in 0..<count {
                let port = all[index], bus = all[count + index]
                let dir = directory.path + "/\(port)"
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                var arguments = ["--port", String(port), "--cluster-port", String(bus), "--bind", "127.0.0.1",
                                 "--cluster-enabled", "yes", "--cluster-config-file", dir + "/nodes.conf",
                                 "--cluster-node-timeout", String(nodeTimeoutMilliseconds),
                                 "--cluster-replica-validity-factor", "0",
                                 "--dir", dir, "--save", "", "--appendonly", "no", "--enable-debug-command", "yes"]
                if let password { arguments += ["--requirepass", password, "--masterauth", password] }
                started[port] = try RedisProcesses.start(port: port, arguments: arguments, log: dir + "/redis.log")
                ports.append(port)
            }
            self.ports = ports
            self.initialMasters = Array(ports.prefix(masters))
            processes = started
            var create = ["--cluster", "create"] + ports.map { "127.0.0.1:\($0)" }
            create += ["--cluster-replicas", String(replicasPerMaster), "--cluster-yes"]
            try RedisProcesses.cli(port: ports[0], password: password, create)
            try waitUntilHealthy(masters: masters, replicas: masters * replicasPerMaster)
        } catch {
            for process in started.values { process.crash() }
            directory.remove()
            throw error
        }
    }

    deinit { stop() }

    /// `redis-cluster://127.0.0.1:<master>,…` with the masters as created as seeds.
    public var url: RedisURL {
        RedisURL(clusterSeeds: initialMasters.map { RedisURL.Endpoint(host: "127.0.0.1", port: $0) }, password: password)
    }

    /// A plain URL to one node (it answers MOVED for slots it does not serve).
    public func nodeURL(_ port: Int) -> RedisURL { RedisURL(host: "127.0.0.1", port: port, password: password) }

    /// `redis-cli` against one node.
    @discardableResult
    public func cli(_ port: Int, _ arguments: String...) throws -> String {
        try RedisProcesses.cli(port: port, password: password, arguments)
    }

    /// The cluster as the node on `port` (default: the first running one) sees it.
    public func nodes(askingPort port: Int? = nil) throws -> [NodeInfo] {
        guard let asked = port ?? runningPorts.first else { throw RedisProcesses.Failure("no node is running") }
        return try cli(asked, "CLUSTER", "NODES").split(whereSeparator: \.isNewline).map { line in
            let fields = line.split(separator: " ").map(String.init)
            guard fields.count >= 8, let colon = fields[1].lastIndex(of: ":"),
                  let port = Int(fields[1][fields[1].index(after: colon)...].prefix(while: \.isNumber))
            else { throw RedisProcesses.Failure("cannot read CLUSTER NODES line '\(line)'") }
            let flags = fields[2].split(separator: ",")
            let slots = fields.dropFirst(8).compactMap { item -> ClosedRange<Int>? in
                if item.hasPrefix("[") { return nil }  // a slot being migrated
                let bounds = item.split(separator: "-").compactMap { Int($0) }
                return bounds.count == 2 ? bounds[0]...bounds[1] : bounds.count == 1 ? bounds[0]...bounds[0] : nil
            }
            return NodeInfo(id: fields[0], port: port, isMaster: flags.contains("master"),
                            isFailing: flags.contains("fail") || flags.contains("fail?"),
                            masterID: fields[3] == "-" ? nil : fields[3], slots: slots)
        }
    }

    /// The ports of the masters that serve slots now.
    public func masters() throws -> [Int] {
        try nodes().filter { $0.isMaster && !$0.isFailing && !$0.slots.isEmpty }.map(\.port)
    }

    /// The port of the master serving `slot` now.
    public func master(ofSlot slot: Int) throws -> Int {
        guard let node = try nodes().first(where: { $0.isMaster && !$0.isFailing && $0.slots.contains { $0.contains(slot) } }) else {
            throw RedisProcesses.Failure("no master serves slot \(slot)")
        }
        return node.port
    }

    /// The replicas of the master on `port`.
    public func replicas(of port: Int) throws -> [Int] {
        let all = try nodes()
        guard let master = all.first(where: { $0.port == port }) else { throw RedisProcesses.Failure("no node on port \(port)") }
        return all.filter { $0.masterID == master.id }.map(\.port)
    }

    public func nodeID(_ port: Int) throws -> String { try cli(port, "CLUSTER", "MYID") }

    /// Runs `CLUSTER FAILOVER` on a replica of the master on `port` and returns the replica's port;
    /// with `wait`, returns once that replica is a master everyone agrees on.
    @discardableResult
    public func failover(replicaOf port: Int, wait: Bool = true, force: Bool = false) throws -> Int {
        guard let replica = try replicas(of: port).first else { throw RedisProcesses.Failure("the master on \(port) has no replica") }
        try RedisProcesses.waitUntil("the replica on \(replica) to be in sync") {
            RedisProcesses.fields(try cli(replica, "INFO", "replication"))["master_link_status"] == "up"
        }
        // FORCE: the replica takes over without waiting for its master to stop and hand over the
        // last writes (the master stays alive and goes on accepting writes until it learns of it).
        if force { try cli(replica, "CLUSTER", "FAILOVER", "FORCE") } else { try cli(replica, "CLUSTER", "FAILOVER") }
        if wait {
            try RedisProcesses.waitUntil("the replica on \(replica) to take over from \(port)") {
                try runningPorts.allSatisfy { asked in
                    try nodes(askingPort: asked).contains { $0.port == replica && $0.isMaster && !$0.slots.isEmpty }
                }
            }
        }
        return replica
    }

    /// Kills the master on `port` with SIGKILL (a crash); returns its replicas' ports.
    @discardableResult
    public func kill9(master port: Int) throws -> [Int] {
        let replicas = try replicas(of: port)
        let process = lock.withLock { processes.removeValue(forKey: port) }
        process?.crash()
        return replicas
    }

    /// Waits until every running node reports `cluster_state:ok` and agrees on the masters.
    public func waitUntilHealthy(masters: Int? = nil, replicas: Int? = nil, timeout: Duration = .seconds(60)) throws {
        try RedisProcesses.waitUntil("the cluster to be healthy", timeout: timeout) {
            for port in runningPorts {
                guard RedisProcesses.fields(try cli(port, "CLUSTER", "INFO"))["cluster_state"] == "ok" else { return false }
                let seen = try nodes(askingPort: port).filter { !$0.isFailing }
                if let masters, seen.filter({ $0.isMaster && !$0.slots.isEmpty }).count != masters { return false }
                if let replicas, seen.filter({ !$0.isMaster }).count != replicas { return false }
            }
            for port in runningPorts {
                let info = RedisProcesses.fields(try cli(port, "INFO", "replication"))
                if info["role"] == "slave" && info["master_link_status"] != "up" { return false }
            }
            return true
        }
    }

    public var runningPorts: [Int] {
        lock.withLock { ports.filter { processes[$0]?.isRunning ?? false } }
    }

    /// Stops every node (SIGTERM, then SIGKILL) and removes the data directories.
    public func stop() {
        let all = lock.withLock { () -> [ChildProcess] in
            defer { processes = [:] }
            return Array(processes.values)
        }
        for process in all { process.signal(SIGTERM) }
        for process in all { process.stop(timeout: .seconds(5)) }
        directory.remove()
    }
}
