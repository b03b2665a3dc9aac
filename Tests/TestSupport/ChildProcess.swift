import Foundation

/// A child process started with `posix_spawn`, with every signal unblocked and at its default
/// action — unlike `Foundation.Process`, whose children inherit the test runner's blocked SIGTERM —
/// so that `stop()` really delivers SIGTERM. Output goes to files; the process is reaped by PID.
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    public let executable: String
    private var exitStatus: Int32?
    private let lock = NSLock()

    private static let addCloseFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? = {
        guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
    }()

    /// - Parameters:
    ///   - stdoutPath, stderrPath: files to append to (`/dev/null` when nil).
    ///   - directory: the working directory (through `env -C`).
    public init(_ executable: String, _ arguments: [String], environment: [String: String],
                stdoutPath: String? = nil, stderrPath: String? = nil, directory: String? = nil) throws {
        self.executable = executable
        var argv = [executable] + arguments
        var program = executable
        if let directory {
            program = "/usr/bin/env"
            argv = ["/usr/bin/env", "-C", directory, executable] + arguments
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdoutPath ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0o644)
        // Nothing else of the test process goes along: a long-running child that inherited the write
        // end of another test's output pipe would keep that test reading until the child exits.
        // (glibc ≥ 2.34 has posix_spawn_file_actions_addclosefrom_np; Swift's Glibc module does not export it.)
        guard let closeFrom = Self.addCloseFrom else { throw POSIXError(.ENOSYS) }
        guard closeFrom(&actions, 3) == 0 else { throw POSIXError(.EINVAL) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)

        let env = environment.map { "\($0.key)=\($0.value)" }
        var pid: pid_t = 0
        let status = Self.withCStringArray(argv) { argvPointer in
            Self.withCStringArray(env) { envPointer in
                posix_spawn(&pid, program, &actions, &attributes, argvPointer, envPointer)
            }
        }
        guard status == 0 else { throw POSIXError(POSIXErrorCode(rawValue: status) ?? .EINVAL) }
        self.pid = pid
    }

    deinit { stop(timeout: .seconds(2)) }

    /// Nil while running, the exit status (or 128 + signal) once it has ended.
    public var status: Int32? {
        lock.lock()
        defer { lock.unlock() }
        if let exitStatus { return exitStatus }
        var raw: Int32 = 0
        let result = waitpid(pid, &raw, WNOHANG)
        guard result == pid else { return nil }
        let terminatedBySignal = (raw & 0x7f) != 0
        exitStatus = terminatedBySignal ? 128 + (raw & 0x7f) : (raw >> 8) & 0xff
        return exitStatus
    }

    public var isRunning: Bool { status == nil }

    /// True while the process is stopped (SIGSTOP): its state in `/proc/<pid>/stat` is `T`.
    public var isStopped: Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        return stat[stat.index(after: close)...].split(separator: " ").first == "T"
    }

    public func signal(_ signal: Int32) {
        if isRunning { kill(pid, signal) }
    }

    /// Waits up to `timeout` for the process to end; its status, or nil if still running.
    @discardableResult
    public func wait(timeout: Duration) -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let status { return status }
            usleep(5_000)
        }
        return status
    }

    /// SIGTERM, then SIGKILL after `timeout`; returns the exit status.
    @discardableResult
    public func stop(timeout: Duration = .seconds(10)) -> Int32? {
        if let status { return status }
        kill(pid, SIGTERM)
        if let status = wait(timeout: timeout) { return status }
        kill(pid, SIGKILL)
        return wait(timeout: .seconds(10))
    }

    /// SIGKILL at once (a crash).
    public func crash() {
        kill(pid, SIGKILL)
        wait(timeout: .seconds(10))
    }

    private static func withCStringArray<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
        let pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) } + [nil]
        defer { pointers.forEach { free($0) } }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}
