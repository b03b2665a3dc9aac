import Foundation
import RelocatorCore

/// A private `redis-server` for one test (restarts, passwords, DEBUG): started on a free loopback
/// port, stopped by its PID.
public final class RedisServer: @unchecked Sendable {
    public let port: Int
    public let password: String?
    private let directory: TemporaryDirectory
    private var process: ChildProcess?

    public init(password: String? = nil) throws {
        self.port = try freeLoopbackPort()
        self.password = password
        self.directory = try TemporaryDirectory("relocator-redis")
        try start()
    }

    deinit { stop(); directory.remove() }

    public var url: RedisURL { RedisURL(host: "127.0.0.1", port: port, password: password) }

    public func start() throws {
        try TestEnvironment.requireServersAllowed("a private redis-server")
        guard let binary = ProcessRunner.which("redis-server") else {
            throw TestEnvironment.Missing(variable: "redis-server on PATH")
        }
        var arguments = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                         "--dir", directory.path, "--enable-debug-command", "yes", "--logfile", directory.path + "/redis.log"]
        if let password { arguments += ["--requirepass", password] }
        let process = try ChildProcess(binary.path, arguments, environment: ProcessInfo.processInfo.environment)
        self.process = process
        // Ready when it accepts a TCP connection.
        let deadline = Date().addingTimeInterval(10)
        while !Self.accepts(port: port) {
            guard Date() < deadline, process.isRunning else { stop(); throw POSIXError(.ECONNREFUSED) }
            usleep(20_000)
        }
    }

    /// Stops the server (SIGTERM, then SIGKILL) and waits until it is gone.
    public func stop() {
        process?.stop(timeout: .seconds(5))
        process = nil
    }

    private static func accepts(port: Int) -> Bool {
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
}
