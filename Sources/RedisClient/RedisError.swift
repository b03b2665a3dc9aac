/// A failure talking to Redis. The description names the server and the command (never its
/// arguments, which may hold data or passwords).
public struct RedisError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Code: String, Sendable {
        /// The server could not be reached or the connection broke.
        case connection
        /// The server did not answer within the command timeout.
        case timeout
        /// AUTH was refused or is required.
        case authentication
        /// The server answered with an error reply.
        case server
        /// A reply of an unexpected shape.
        case protocolViolation
        /// The pool was shut down.
        case closed
        /// A write ran but fewer replicas than asked for confirmed it (`WAIT`) in time: it may or
        /// may not survive a failover.
        case replication
    }

    public var code: Code
    /// `host:port` of the server.
    public var address: String
    /// The command name (first argument), when there was one.
    public var command: String?
    public var message: String

    public init(code: Code, address: String, command: String? = nil, message: String) {
        self.code = code
        self.address = address
        self.command = command
        self.message = message
    }

    public var description: String {
        let what = command.map { " \($0)" } ?? ""
        return "redis \(address)\(what): \(message)"
    }

    /// True when the server answered `NOSCRIPT` (EVALSHA of a script it does not hold).
    public var isNoScript: Bool { code == .server && message.hasPrefix("NOSCRIPT") }

    /// The server cannot run commands for a while (loading its data after a restart, a script
    /// running too long, a failover or a cluster change in progress, its memory full under
    /// `noeviction`): the command did not run, and asking again later is the answer.
    public var isTransientServerState: Bool {
        code == .server && ["LOADING", "BUSY", "MASTERDOWN", "READONLY", "TRYAGAIN", "CLUSTERDOWN", "NOREPLICAS", "OOM", "MISCONF"].contains {
            message.hasPrefix($0 + " ") || message == $0
        }
    }

    /// The server is over its `maxmemory` and refused a command that may write (`OOM …`). A script
    /// that declares its flags is refused before it runs, so nothing of it was written.
    public var isOutOfMemory: Bool { code == .server && (message.hasPrefix("OOM ") || message == "OOM") }
}
