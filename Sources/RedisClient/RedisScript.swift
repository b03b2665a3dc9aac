import Synchronization

/// A Lua script run with EVALSHA. The server loads it on first use and again after `SCRIPT FLUSH`
/// or a restart (`NOSCRIPT`), so callers never send the source with every call.
public final class RedisScript: Sendable {
    public let source: String
    private let sha = Mutex<String?>(nil)

    public init(_ source: String) {
        self.source = source
    }

    /// The SHA1 the server answered to the last `SCRIPT LOAD`, if any.
    var loadedSHA: String? {
        get { sha.withLock { $0 } }
        set { sha.withLock { $0 = newValue } }
    }

    func command(sha: String, keys: [any RedisArgumentConvertible], arguments: [any RedisArgumentConvertible]) -> RedisCommand {
        RedisCommand(["EVALSHA", sha, keys.count] + keys + arguments)
    }
}
