import Foundation
import RelocatorCore
import SQLStore

/// The `relocator` binary as an operator meets it: a working directory of its own (where the
/// default `relocator.sqlite` lives: `DATABASE_URL` is unset unless a test sets it), a Redis key
/// prefix of its own on the test Redis, `COLUMNS=100` so help and tables do not depend on the
/// terminal, and level directories made on demand. Started processes are stopped by PID and the
/// directory removed in `stop()`, also when a test fails.
public final class CLIWorkspace: @unchecked Sendable {
    public let directory: TemporaryDirectory
    public let prefix: String
    public var environment: [String: String]
    private var processes: [ChildProcess] = []
    private let lock = NSLock()

    /// A Redis address where nothing listens, for a workspace whose commands only parse their
    /// arguments or use the database: they must never need Redis, and run without a Redis server.
    public static let noRedis = "redis://127.0.0.1:1/0"

    /// - Parameter redis: the Redis to use (default: the test Redis).
    public init(redis: String? = nil, environment extra: [String: String] = [:]) throws {
        directory = try TemporaryDirectory("relocator-cli")
        chmod(directory.path, 0o755)
        prefix = "{\(TestEnvironment.uniqueName("cli"))}"
        var environment = ProcessInfo.processInfo.environment
        for name in ["DATABASE_URL", "RELOCATOR_LEVELS", "RELOCATOR_LOG_LEVEL", "RELOCATOR_LOG_FORMAT", "RELOCATOR_FAULTS",
                     "RELOCATOR_MIGRATIONS", "RELOCATOR_API_TOKEN", "RELOCATOR_SHARDS", "RELOCATOR_SUBMIT_TOKEN", "RELOCATOR_ADMIN_TOKEN",
                     "RELOCATOR_READ_TOKEN", "RELOCATOR_REDIS_MIN_REPLICAS", "RELOCATOR_REDIS_REPLICA_TIMEOUT_MS"] {
            environment[name] = nil
        }
        environment["REDIS_URL"] = try redis ?? TestEnvironment.value("RELOCATOR_TEST_REDIS_URL")
        environment["RELOCATOR_PREFIX"] = prefix
        environment["RELOCATOR_HEARTBEAT_TTL_MS"] = "1500"
        environment["RELOCATOR_RETRY_BASE_MS"] = "100"
        environment["COLUMNS"] = "100"
        environment.merge(extra) { $1 }
        self.environment = environment
    }

    deinit { stop() }

    public var path: String { directory.path }

    /// The SQLite file commands use when `DATABASE_URL` is unset.
    public var databasePath: String { directory.path + "/relocator.sqlite" }

    /// Makes `<workspace>/levels/<name>` for each level and returns `RELOCATOR_LEVELS`'s value.
    @discardableResult
    public func makeLevels(_ names: [String] = ["bronze", "silver", "gold"]) throws -> String {
        var pairs: [String] = []
        for name in names {
            let path = directory.path + "/levels/" + name
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            pairs.append("\(name)=\(path)")
        }
        chmod(directory.path + "/levels", 0o755)
        return pairs.joined(separator: ",")
    }

    public func levelPath(_ name: String) -> String { directory.path + "/levels/" + name }

    /// Runs a command to completion in the workspace; `input` goes to its standard input.
    public func run(_ arguments: [String], environment extra: [String: String] = [:], input: String? = nil) throws -> ProcessResult {
        try Self.run(TestEnvironment.relocatorBinary(), arguments, environment: environment.merging(extra) { $1 },
                     directory: directory.url, input: input)
    }

    /// Runs a command as `nobody` (setpriv), from a copy of the binary nobody may execute.
    public func runAsNobody(_ arguments: [String], environment extra: [String: String] = [:]) throws -> ProcessResult {
        try Self.run(URL(fileURLWithPath: "/usr/bin/setpriv"),
                     ["--reuid=nobody", "--regid=nogroup", "--clear-groups", try nobodyBinary()] + arguments,
                     environment: environment.merging(extra) { $1 }, directory: directory.url, input: nil)
    }

    private func nobodyBinary() throws -> String {
        let copy = directory.path + "/bin/relocator"
        if !FileManager.default.fileExists(atPath: copy) {
            try FileManager.default.createDirectory(atPath: directory.path + "/bin", withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: try TestEnvironment.relocatorBinary().path, toPath: copy)
            chmod(directory.path + "/bin", 0o755)
            chmod(copy, 0o755)
        }
        return copy
    }

    /// Starts a long-running command; its output goes to `<name>.out` and `<name>.err`.
    @discardableResult
    public func start(_ name: String, _ arguments: [String], environment extra: [String: String] = [:]) throws -> ChildProcess {
        let process = try ChildProcess(try TestEnvironment.relocatorBinary().path, arguments, environment: environment.merging(extra) { $1 },
                                       stdoutPath: directory.path + "/\(name).out", stderrPath: directory.path + "/\(name).err",
                                       directory: directory.path)
        lock.withLock { processes.append(process) }
        return process
    }

    /// What a started command wrote so far.
    public func stdout(_ name: String) -> String { read(directory.path + "/\(name).out") }
    public func stderr(_ name: String) -> String { read(directory.path + "/\(name).err") }

    private func read(_ path: String) -> String {
        guard let data = FileManager.default.contents(atPath: path) else { return "" }
        return String(decoding: data, as: UTF8.self)
    }

    /// Polls `condition` until it holds or `timeout` passes.
    public func waitUntil(_ what: String, timeout: Duration = .seconds(30), _ condition: () throws -> Bool) throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try condition() { return }
            usleep(50_000)
        }
        throw ClusterError("timed out waiting for \(what)")
    }

    /// Opens the workspace's SQLite database (or `url`) for a test to look at or seed.
    public func openDatabase(_ url: DatabaseURL? = nil) throws -> any SQLDatabase {
        try SQLStore.openDatabase(url ?? .sqlite(path: databasePath), access: .readWrite)
    }

    /// Stops every started process (SIGTERM, then SIGKILL) and removes the directory.
    public func stop() {
        let all = lock.withLock { processes }
        for process in all { process.signal(SIGTERM) }
        for process in all { process.stop(timeout: .seconds(10)) }
        lock.withLock { processes = [] }
        directory.remove()
    }

    /// Runs a program to completion with `input` on its standard input (none: /dev/null).
    public static func run(_ executable: URL, _ arguments: [String], environment: [String: String], directory: URL?,
                           input: String?) throws -> ProcessResult {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = environment
        if let directory { process.currentDirectoryURL = directory }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let inPipe = input.map { _ in Pipe() }
        process.standardInput = inPipe ?? FileHandle.nullDevice
        try process.run()
        let group = DispatchGroup()
        nonisolated(unsafe) var outData = Data(), errData = Data()
        group.enter()
        DispatchQueue.global().async { outData = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        group.enter()
        DispatchQueue.global().async { errData = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        if let inPipe, let input {
            inPipe.fileHandleForWriting.write(Data(input.utf8))
            try inPipe.fileHandleForWriting.close()
        }
        group.wait()
        process.waitUntilExit()
        return ProcessResult(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                             stderr: String(decoding: errData, as: UTF8.self))
    }
}

extension ProcessResult {
    /// Standard error's lines, without blank ones.
    public var errorLines: [Substring] {
        stderr.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
    }

    /// Standard output's lines.
    public var lines: [Substring] { stdout.split(separator: "\n") }

    /// Standard output as JSON.
    public func json() throws -> Any {
        try JSONSerialization.jsonObject(with: Data(stdout.utf8))
    }
}
