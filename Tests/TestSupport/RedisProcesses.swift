import Foundation
import RelocatorCore

/// Plain `redis-server` processes on loopback for the cluster and sentinel test setups, and
/// `redis-cli` to steer them (TestSupport does not link the client under test).
public enum RedisProcesses {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(_ description: String) { self.description = description }
    }

    static func binary(_ name: String) throws -> String {
        guard let url = ProcessRunner.which(name) else { throw TestEnvironment.Missing(variable: "\(name) on PATH") }
        return url.path
    }

    /// Starts `redis-server` with `arguments` (its config file first, for a sentinel) and waits until
    /// it accepts connections on `port`. Output goes to `log`.
    static func start(port: Int, arguments: [String], log: String) throws -> ChildProcess {
        try TestEnvironment.requireServersAllowed("a private redis-server")
        let process = try ChildProcess(try binary("redis-server"), arguments, environment: ProcessInfo.processInfo.environment,
                                       stdoutPath: log, stderrPath: log)
        let deadline = ContinuousClock.now + .seconds(10)
        while !accepts(port: port) {
            guard ContinuousClock.now < deadline, process.isRunning else {
                process.stop(timeout: .seconds(2))
                throw Failure("redis-server on port \(port) did not start: \(tail(of: log))")
            }
            usleep(20_000)
        }
        return process
    }

    /// The end of a log file, for a failure message.
    static func tail(of path: String) -> String {
        do {
            return String(try String(contentsOfFile: path, encoding: .utf8).suffix(600))
        } catch {
            return "(no log at \(path): \(error))"
        }
    }

    /// Runs `redis-cli -h 127.0.0.1 -p PORT ARGS…` and returns its output; fails on a non-zero exit or
    /// an error reply. `redis-cli` exits 0 after an error reply and, without a terminal, prints it bare
    /// (`INPROG Failover already in progress`), so an output that begins with one of Redis' error codes
    /// is an error too.
    @discardableResult
    public static func cli(port: Int, password: String? = nil, _ arguments: [String]) throws -> String {
        let output = try reply(port: port, password: password, arguments)
        let code = output.prefix { $0.isUppercase || $0 == "-" }
        guard !output.hasPrefix("(error)"), !(errorCodes.contains(String(code)) && output.dropFirst(code.count).first == " ") else {
            throw Failure("redis-cli -p \(port) \(arguments.joined(separator: " ").prefix(80)): \(output)")
        }
        return output
    }

    /// Redis' error codes, as the first word of an error reply.
    static let errorCodes: Set<String> = [
        "ERR", "WRONGTYPE", "INPROG", "NOGOODSLAVE", "NOSCRIPT", "BUSY", "BUSYKEY", "LOADING", "READONLY", "NOREPLICAS",
        "MASTERDOWN", "OOM", "NOAUTH", "WRONGPASS", "NOPERM", "CLUSTERDOWN", "MOVED", "ASK", "TRYAGAIN", "CROSSSLOT",
        "EXECABORT", "UNBLOCKED", "NOTBUSY", "MISCONF",
    ]

    /// Runs `redis-cli` as `cli` does and returns its output, an error reply included; fails only on a
    /// non-zero exit.
    public static func reply(port: Int, password: String? = nil, _ arguments: [String]) throws -> String {
        var all = ["-h", "127.0.0.1", "-p", String(port)]
        if let password { all += ["-a", password, "--no-auth-warning"] }
        let result = try ProcessRunner.run(URL(fileURLWithPath: try binary("redis-cli")), all + arguments)
        let output = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        guard result.status == 0 else {
            throw Failure("redis-cli -p \(port) \(arguments.first ?? ""): exit \(result.status): \(output) \(result.stderr)")
        }
        return output
    }

    /// Polls `condition` every 50 ms until it holds; fails after `timeout`.
    public static func waitUntil(_ what: String, timeout: Duration = .seconds(30), _ condition: () throws -> Bool) throws {
        let deadline = ContinuousClock.now + timeout
        var lastError: (any Error)?
        while ContinuousClock.now < deadline {
            do {
                if try condition() { return }
            } catch {
                lastError = error
            }
            usleep(50_000)
        }
        throw Failure("timed out waiting for \(what)" + (lastError.map { " (last error: \($0))" } ?? ""))
    }

    /// `n` distinct free loopback ports.
    static func freePorts(_ count: Int) throws -> [Int] {
        var ports: [Int] = []
        while ports.count < count {
            let port = try freeLoopbackPort()
            if !ports.contains(port) { ports.append(port) }
        }
        return ports
    }

    static func accepts(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    /// `name:value` lines (INFO) as a dictionary.
    public static func fields(_ text: String) -> [String: String] {
        var result: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            result[String(line[..<colon])] = String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
        }
        return result
    }

    /// A flat `name\nvalue\n…` reply printed by redis-cli (SENTINEL MASTER) as a dictionary.
    public static func pairs(_ text: String) -> [String: String] {
        let lines = text.split(whereSeparator: \.isNewline).map(String.init)
        var result: [String: String] = [:]
        var index = 0
        while index + 1 < lines.count {
            result[lines[index]] = lines[index + 1]
            index += 2
        }
        return result
    }
}
