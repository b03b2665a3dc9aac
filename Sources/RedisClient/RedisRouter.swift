import Foundation
import RelocatorCore

/// A reply and the node that gave it (a script the node did not hold is loaded on that node).
struct RedisAnswer {
    var reply: RedisReply
    let node: RedisNodeConnection
}

/// How `RedisConnection` reaches its server(s): one server, a cluster (slot routing and redirects)
/// or the master named by sentinels (following failovers). Used by one thread at a time.
///
/// The rule for retries is the same everywhere: a command is sent again only when it surely did not
/// run — the connection could not be made, or the server answered that it did not run it (MOVED,
/// ASK, TRYAGAIN, CLUSTERDOWN, READONLY). A connection that breaks or times out after the command
/// was written throws: the command may have run, and only the caller knows whether running it twice
/// is safe. The next command then looks for the right server again.
protocol RedisRouter: AnyObject {
    var isConnected: Bool { get }
    /// The node connections it holds now (for tests and diagnostics).
    var nodeConnections: [RedisNodeConnection] { get }
    func connect() throws
    /// One command; `block` is the server-side block time of a blocking command. With `script`
    /// (the command is its EVALSHA), the node it goes to loads the script first when it may not
    /// hold it, in the same round trip.
    func execute(_ command: RedisCommand, script: RedisScript?, block: Duration?) throws -> RedisAnswer
    /// Many commands, one answer each, in order; error replies stay in place. `scripts[i]` is the
    /// script of `commands[i]` (or nil), loaded as in `execute`.
    func pipeline(_ commands: [RedisCommand], scripts: [RedisScript?]) throws -> [RedisAnswer]
    func close()
}

extension RedisReply {
    /// An error reply starting with `prefix` followed by a space or the end.
    func isError(_ prefix: String) -> Bool {
        guard case .error(let message) = self, message.hasPrefix(prefix) else { return false }
        return message.count == prefix.count || message.dropFirst(prefix.count).first == " "
    }

    var isNoScript: Bool { isError("NOSCRIPT") }
}

/// Sleeps the calling thread (a connection's retries wait here; it only ever runs on threads that
/// may block).
func pause(_ duration: Duration) {
    let (seconds, attoseconds) = duration.components
    var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
}

/// Growing waits between retries, within a deadline.
struct RetryBackoff {
    let deadline: ContinuousClock.Instant
    private var delay: Duration = .milliseconds(20)
    private static let cap: Duration = .milliseconds(400)

    init(budget: Duration) { deadline = .now + budget }

    /// Waits before the next try and returns true, or returns false at once when that try would
    /// start after the deadline.
    mutating func wait() -> Bool {
        guard ContinuousClock.now + delay < deadline else { return false }
        pause(delay)
        delay = min(delay * 2, Self.cap)
        return true
    }
}

/// One server: no retries, exactly as a plain connection has always behaved.
final class RedisStandaloneRouter: RedisRouter {
    let node: RedisNodeConnection
    let commandTimeout: Duration

    init(node: RedisNodeConnection, commandTimeout: Duration) {
        self.node = node
        self.commandTimeout = commandTimeout
    }

    var isConnected: Bool { node.isConnected }
    var nodeConnections: [RedisNodeConnection] { [node] }

    func connect() throws { try node.connect() }

    func execute(_ command: RedisCommand, script: RedisScript?, block: Duration?) throws -> RedisAnswer {
        try node.prepare(for: command.name)
        if let block {
            node.setTimeout(commandTimeout + block)
            defer { node.setTimeout(commandTimeout) }
            return RedisAnswer(reply: try node.exchange(command, script: script), node: node)
        }
        return RedisAnswer(reply: try node.exchange(command, script: script), node: node)
    }

    func pipeline(_ commands: [RedisCommand], scripts: [RedisScript?]) throws -> [RedisAnswer] {
        if commands.isEmpty { return [] }
        try node.prepare(for: commands[0].name)
        let frames = try node.send(Array(zip(commands, scripts)))
        return try node.receive(frames).map { RedisAnswer(reply: $0, node: node) }
    }

    func close() { node.close() }
}
