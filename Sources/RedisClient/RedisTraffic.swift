import Synchronization

/// What this process sent to Redis, over every connection: the commands a client writes (an
/// `EVALSHA` is one, whatever its script runs inside Redis; a `SCRIPT LOAD` sent with it is
/// another). Redis's own `INFO commandstats` counts the commands scripts run as well; this is the
/// other half of the picture, and what a round-trip budget is about. Exported as
/// `relocator_redis_commands_sent_total` on `/metrics`.
public enum RedisTraffic {
    private static let sent = Atomic<Int>(0)

    /// Commands written since the process started.
    public static var commandsSent: Int { sent.load(ordering: .relaxed) }

    static func wrote(_ commands: Int) {
        sent.add(commands, ordering: .relaxed)
    }
}
