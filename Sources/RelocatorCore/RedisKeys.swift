/// The Redis keys of DESIGN.md, under a prefix (default `{relocator}`: a Redis Cluster hash tag, so
/// every key lands in one slot and the Lua scripts stay legal there).
public struct RedisKeys: Equatable, Sendable {
    public let prefix: String

    public static let defaultPrefix = "{relocator}"

    public init(prefix: String = RedisKeys.defaultPrefix) {
        self.prefix = prefix
    }

    public func job(_ cid: Int64) -> String { "\(prefix)job:\(cid)" }
    public func queue(_ level: String) -> String { "\(prefix)queue:\(level)" }
    public func processing(_ worker: String) -> String { "\(prefix)processing:\(worker)" }
    public func heartbeat(_ worker: String) -> String { "\(prefix)worker:\(worker)" }
    public func committing(_ committer: String) -> String { "\(prefix)committing:\(committer)" }
    /// When the reaper first saw a worker's heartbeat missing.
    public func suspect(_ worker: String) -> String { "\(prefix)suspect:\(worker)" }
    public var workers: String { "\(prefix)workers" }
    public var retry: String { "\(prefix)retry" }
    public var dead: String { "\(prefix)dead" }
    public var done: String { "\(prefix)done" }
    /// Temporary files of jobs that are gone, for a worker to remove.
    public var staleParts: String { "\(prefix)stale-parts" }
}
