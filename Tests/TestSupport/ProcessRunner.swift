import Foundation

/// The outcome of a finished process.
public struct ProcessResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

public enum ProcessRunner {
    /// Runs a program to completion and collects its output.
    public static func run(_ executable: URL, _ arguments: [String], environment: [String: String]? = nil,
                           currentDirectory: URL? = nil) throws -> ProcessResult {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if let environment { process.environment = environment }
        if let currentDirectory { process.currentDirectoryURL = currentDirectory }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // Read both pipes before waiting, so a chatty process cannot fill one and stall.
        let group = DispatchGroup()
        nonisolated(unsafe) var outData = Data(), errData = Data()
        group.enter()
        DispatchQueue.global().async { outData = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        errData = err.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return ProcessResult(status: process.terminationStatus,
                             stdout: String(decoding: outData, as: UTF8.self),
                             stderr: String(decoding: errData, as: UTF8.self))
    }

    /// Finds a program on PATH.
    public static func which(_ name: String) -> URL? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/bin"] {
            let candidate = URL(fileURLWithPath: dir).appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return nil
    }
}

/// A loopback TCP socket bound to a free port, and the port: listening (a backlog of `backlog`)
/// unless `backlog` is nil. The caller closes it.
public func loopbackSocket(backlog: Int32? = 4) throws -> (fd: Int32, port: Int) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw POSIXError(.EMFILE) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
            bind(fd, sa, length) == 0 && backlog.map { listen(fd, $0) == 0 } ?? true && getsockname(fd, sa, &length) == 0
        }
    }
    guard bound else {
        close(fd)
        throw POSIXError(.EADDRINUSE)
    }
    return (fd, Int(UInt16(bigEndian: address.sin_port)))
}

/// True while no connection waits to be accepted on the listening socket `fd`.
public func noConnectionWaits(on fd: Int32) -> Bool {
    var waiting = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    return poll(&waiting, 1, 0) == 0
}

/// A loopback TCP port nobody listens on right now.
public func freeLoopbackPort() throws -> Int {
    let (fd, port) = try loopbackSocket(backlog: nil)
    close(fd)
    return port
}

/// An LD_PRELOAD shim of `Scripts/` (`name`.c) built into `directory`: its path.
public func buildShim(_ name: String, in directory: String) throws -> String {
    let shim = directory + "/\(name).so"
    guard let compiler = ProcessRunner.which("cc") ?? ProcessRunner.which("gcc") ?? ProcessRunner.which("clang") else {
        throw POSIXError(.ENOENT, userInfo: [NSLocalizedDescriptionKey: "no C compiler for Scripts/\(name).c (Scripts/setup installs gcc; the Swift toolchain has clang)"])
    }
    let built = try ProcessRunner.run(compiler, ["-shared", "-fPIC", "-O2", "-o", shim, TestEnvironment.packageRoot.path + "/Scripts/\(name).c", "-ldl"])
    guard built.status == 0 else {
        throw POSIXError(.EINVAL, userInfo: [NSLocalizedDescriptionKey: "cannot build Scripts/\(name).c: \(built.stderr)"])
    }
    return shim
}
