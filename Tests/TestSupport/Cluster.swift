import Foundation
import RelocatorCore
import SQLStore

/// The real `relocator` binary as separate processes (API, workers, committer) around one Redis
/// prefix, one database and level directories of their own. Every process is stopped by PID in
/// `stop()`, also when a test fails.
public final class Cluster: @unchecked Sendable {
    public let directory: TemporaryDirectory
    public let database: DatabaseURL
    public let prefix: String
    public var environment: [String: String]
    private var processes: [ChildProcess] = []
    private let lock = NSLock()
    public private(set) var apiPort: Int?

    /// - Parameter levels: level name → directory.
    public init(redis: String, database: DatabaseURL, levels: [(String, String)], environment extra: [String: String] = [:]) throws {
        directory = try TemporaryDirectory("relocator-cluster")
        self.database = database
        prefix = "{\(TestEnvironment.uniqueName("e2e"))}"
        var environment = ProcessInfo.processInfo.environment
        environment["REDIS_URL"] = redis
        environment["DATABASE_URL"] = TestDatabase.text(database)
        environment["RELOCATOR_PREFIX"] = prefix
        environment["RELOCATOR_LEVELS"] = levels.map { "\($0.0)=\($0.1)" }.joined(separator: ",")
        environment["RELOCATOR_HEARTBEAT_TTL_MS"] = "1500"
        environment["RELOCATOR_RETRY_BASE_MS"] = "200"
        environment["RELOCATOR_LOG_LEVEL"] = "debug"
        environment.merge(extra) { $1 }
        self.environment = environment
    }

    deinit { stop() }

    /// Runs a command to completion (`migrate`, `dlq list`…).
    public func run(_ arguments: [String], environment extra: [String: String] = [:]) throws -> ProcessResult {
        try ProcessRunner.run(TestEnvironment.relocatorBinary(), arguments, environment: environment.merging(extra) { $1 },
                              currentDirectory: directory.url)
    }

    /// Starts a long-running command; its output goes to `<name>.out` / `<name>.err`.
    @discardableResult
    public func start(_ name: String, _ arguments: [String], environment extra: [String: String] = [:]) throws -> ChildProcess {
        let process = try ChildProcess(try TestEnvironment.relocatorBinary().path, arguments,
                                       environment: environment.merging(extra) { $1 },
                                       stdoutPath: directory.path + "/\(name).out", stderrPath: directory.path + "/\(name).err",
                                       directory: directory.path)
        lock.withLock { processes.append(process) }
        return process
    }

    /// Starts the API on a free port and waits until it listens.
    @discardableResult
    public func startAPI(environment extra: [String: String] = [:]) throws -> Int {
        unlink(directory.path + "/api.out")  // a line from an earlier start must not be read
        let process = try start("api", ["serve", "--port", "0"], environment: extra)
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let out = (try? String(contentsOfFile: directory.path + "/api.out", encoding: .utf8)) ?? ""
            if let line = out.split(separator: "\n").first(where: { $0.hasPrefix("listening on http://") }),
               let port = Int(line.split(separator: ":").last ?? "") {
                apiPort = port
                return port
            }
            guard process.isRunning else { break }
            usleep(20_000)
        }
        throw ClusterError("the API did not start: \(log("api"))")
    }

    @discardableResult
    public func startWorker(_ id: String, levels: String? = nil, concurrency: Int = 2, environment extra: [String: String] = [:]) throws -> ChildProcess {
        var arguments = ["worker", "--id", id, "--concurrency", String(concurrency), "--grace-period", "5"]
        if let levels { arguments += ["--levels", levels] }
        return try start(id, arguments, environment: extra)
    }

    @discardableResult
    public func startCommitter(_ id: String = "committer", batch: Int = 100, arguments extra: [String] = []) throws -> ChildProcess {
        try start(id, ["committer", "--id", id, "--batch", String(batch)] + extra)
    }

    /// Standard error of a started process, for failure messages.
    public func log(_ name: String) -> String {
        String(wholeLog(name).suffix(4000))
    }

    /// All of a started process's standard error, for a line that may be followed by many others.
    public func wholeLog(_ name: String) -> String {
        (try? String(contentsOfFile: directory.path + "/\(name).err", encoding: .utf8)) ?? ""
    }

    /// `/v1/queues` as JSON.
    public func queues() throws -> [String: Any] {
        guard let port = apiPort else { throw ClusterError("the API is not running") }
        guard let json = try HTTP.get(port, "/v1/queues").json else { throw ClusterError("/v1/queues did not answer JSON") }
        return json
    }

    /// Nothing queued, moving, retrying, done or committing.
    public func isIdle() throws -> Bool {
        let q = try queues()
        let depths = (q["queues"] as? [String: Int] ?? [:]).values.reduce(0, +)
        return depths + ["processing", "retry", "done", "committing"].reduce(0) { $0 + ((q[$1] as? Int) ?? 0) } == 0
    }

    /// Polls `condition` until it holds or `timeout` passes.
    public func waitUntil(_ what: String, timeout: Duration = .seconds(60), _ condition: () throws -> Bool) throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try condition() { return }
            usleep(50_000)
        }
        throw ClusterError("timed out waiting for \(what)")
    }

    /// Stops every process (SIGTERM, then SIGKILL) and removes the logs.
    public func stop(keepLogs: Bool = false) {
        let all = lock.withLock { processes }
        for process in all { process.signal(SIGTERM) }
        for process in all { process.stop(timeout: .seconds(10)) }
        lock.withLock { processes = [] }
        if !keepLogs { directory.remove() }
    }
}

public struct ClusterError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
