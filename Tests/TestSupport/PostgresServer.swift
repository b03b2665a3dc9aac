import Foundation
import RelocatorCore

/// A private PostgreSQL server for a test that must stop and start it: `initdb` in a directory of
/// its own (owned by the `postgres` user, as the server refuses to run as root), a free port,
/// stopped by PID.
public final class PostgresServer: @unchecked Sendable {
    public let port: Int
    private let root: String
    private let bin: String
    private var running = false

    public init() throws {
        try TestEnvironment.requireServersAllowed("a private PostgreSQL")
        guard let bin = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql"))?
            .sorted(by: { $0.compare($1, options: .numeric) == .orderedAscending }).last.map({ "/usr/lib/postgresql/\($0)/bin" })
        else { throw TestEnvironment.Missing(variable: "PostgreSQL under /usr/lib/postgresql (run Scripts/setup)") }
        self.bin = bin
        port = try freeLoopbackPort()
        root = "/tmp/" + TestEnvironment.uniqueName("relocator-pg")
        try FileManager.default.createDirectory(atPath: root + "/socket", withIntermediateDirectories: true)
        try Self.run("/bin/chown", ["-R", "postgres:", root])
        try Self.run("/usr/sbin/runuser", ["-u", "postgres", "--", bin + "/initdb", "-D", root + "/data", "-U", "postgres",
                                            "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"])
        try start()
    }

    deinit { stop(); try? FileManager.default.removeItem(atPath: root) }

    public var url: DatabaseURL {
        .postgres(.init(host: "127.0.0.1", port: port, user: "postgres", database: "postgres"))
    }

    public func start() throws {
        try Self.run("/usr/sbin/runuser", ["-u", "postgres", "--", bin + "/pg_ctl", "-D", root + "/data", "-l", root + "/log",
                                            "-w", "-t", "30", "-o",
                                            "-p \(port) -k \(root)/socket -c listen_addresses=127.0.0.1 -c fsync=off", "start"])
        running = true
    }

    /// Stops the server (fast shutdown: connections are closed) and waits until it is gone.
    public func stop() {
        guard running else { return }
        _ = try? Self.run("/usr/sbin/runuser", ["-u", "postgres", "--", bin + "/pg_ctl", "-D", root + "/data", "-m", "fast", "-w", "stop"])
        running = false
    }

    /// Runs a tool with its output in a file: the server that `pg_ctl start` leaves running would
    /// hold a pipe open forever.
    private static func run(_ tool: String, _ arguments: [String]) throws {
        let log = "/tmp/" + TestEnvironment.uniqueName("relocator-pg-tool") + ".log"
        defer { unlink(log) }
        let process = try ChildProcess(tool, arguments, environment: ProcessInfo.processInfo.environment, stdoutPath: log, stderrPath: log)
        let status = process.wait(timeout: .seconds(60))
        guard status == 0 else {
            let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            throw ClusterError("\(tool) \(arguments.first ?? ""): exit \(status.map(String.init) ?? "timeout"): \(output.suffix(500))")
        }
    }
}

extension TestFiles {
    /// A large file written fast: one random 1 MiB block, stamped with its index, `mebibytes` times.
    @discardableResult
    public static func makeLarge(_ path: String, mebibytes: Int) throws -> String {
        guard let handle = FileHandle(forWritingAtPath: path) ?? {
            _ = FileManager.default.createFile(atPath: path, contents: nil)
            return FileHandle(forWritingAtPath: path)
        }() else { throw POSIXError(.EIO) }
        var block = [UInt8](repeating: 0, count: 1 << 20)
        var generator = SystemRandomNumberGenerator()
        for index in block.indices { block[index] = UInt8.random(in: 0...255, using: &generator) }
        for index in 0..<mebibytes {
            withUnsafeBytes(of: UInt64(index)) { for (offset, byte) in $0.enumerated() { block[offset] = byte } }
            handle.write(Data(block))
        }
        try handle.close()
        return try sha256(path)
    }
}
